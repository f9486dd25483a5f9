# volback's storage gateways: the only holders of the repository key, any number of replicas
# (one NATS queue group). The same service as `storage-gateway` in docker-compose.yml.
# Secrets from the Nomad variable nomad/jobs/volback-storage-gateway: password, access_key,
# secret_key (`nomad var put nomad/jobs/volback-storage-gateway password=… access_key=… secret_key=…`).

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
        VOLBACK_REPOSITORY_INIT = "true"
        LOG_LEVEL               = "info"
      }

      template {
        destination = "secrets/gateway.env"
        env         = true
        data        = <<-EOT
          # The repository: the bucket `volback` of the MinIO job; for another S3 store write its
          # s3:http(s)://host[:port]/bucket[/prefix] here.
          VOLBACK_REPOSITORY={{ range nomadService "volback-minio" }}s3:http://{{ .Address }}:{{ .Port }}/volback{{ end }}
          VOLBACK_NATS_URL={{ range $i, $s := nomadService "volback-nats" }}{{ if $i }},{{ end }}nats://{{ .Address }}:{{ .Port }}{{ end }}
          {{ with nomadVar "nomad/jobs/volback-storage-gateway" }}
          VOLBACK_PASSWORD={{ .password }}
          AWS_ACCESS_KEY_ID={{ .access_key }}
          AWS_SECRET_ACCESS_KEY={{ .secret_key }}
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
