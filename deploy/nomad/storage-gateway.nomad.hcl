# volback's storage gateways: the only holders of the repository key, any number of replicas
# (one NATS queue group). The same service as `storage-gateway` in docker-compose.yml.
# Its files (as the compose `init` gives them, README.md) from the Nomad variable
# nomad/jobs/volback-storage-gateway, rendered into the task's secrets dir (/secrets, 0600, node):
#   nomad var put nomad/jobs/volback-storage-gateway nats_nk=@secrets/identities/gateway.nk \
#     ca_crt=@secrets/ca/ca.crt repository_password=@secrets/repository-password \
#     s3_secret_key=@secrets/minio-root-password access_key=volback

variable "image" {
  type    = string
  default = "volback:local"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "volback-storage-gateway" {
  type        = "service"
  datacenters = var.datacenters

  group "storage-gateway" {
    count = 2

    network {
      port "ops" {
        to = 9400
      }
    }

    service {
      name     = "volback-storage-gateway"
      provider = "nomad"
      port     = "ops"

      check {
        type     = "http"
        path     = "/readyz"
        interval = "15s"
        timeout  = "5s"
      }
    }

    task "storage-gateway" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        image = var.image
        args  = ["storage-gateway"]
        init  = true
        ports = ["ops"]
      }

      env {
        VOLBACK_NATS_NKEY_FILE     = "/secrets/nats.nk"
        VOLBACK_NATS_CA_FILE       = "/secrets/ca.crt"
        VOLBACK_REPOSITORY_INIT    = "true"
        VOLBACK_PASSWORD_FILE      = "/secrets/repository-password"
        AWS_SECRET_ACCESS_KEY_FILE = "/secrets/s3-secret-key"
        VOLBACK_S3_CA_FILE         = "/secrets/ca.crt"
        LOG_LEVEL                  = "info"
      }

      template {
        destination = "secrets/nats.nk"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-storage-gateway\" }}{{ .nats_nk }}{{ end }}"
      }

      template {
        destination = "secrets/ca.crt"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-storage-gateway\" }}{{ .ca_crt }}{{ end }}"
      }

      template {
        destination = "secrets/repository-password"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-storage-gateway\" }}{{ .repository_password }}{{ end }}"
      }

      template {
        destination = "secrets/s3-secret-key"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-storage-gateway\" }}{{ .s3_secret_key }}{{ end }}"
      }

      template {
        destination = "secrets/gateway.env"
        env         = true
        data        = <<-EOT
          # The repository: the bucket `volback` of the MinIO job; for another S3 store write its
          # s3:http(s)://host[:port]/bucket[/prefix] here.
          VOLBACK_REPOSITORY={{ range nomadService "volback-minio" }}s3:https://{{ .Address }}:{{ .Port }}/volback{{ end }}
          VOLBACK_NATS_URL={{ range $i, $s := nomadService "volback-nats" }}{{ if $i }},{{ end }}nats://{{ .Address }}:{{ .Port }}{{ end }}
          {{ with nomadVar "nomad/jobs/volback-storage-gateway" }}
          AWS_ACCESS_KEY_ID={{ .access_key }}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 1000
        memory = 1024
      }
    }
  }
}
