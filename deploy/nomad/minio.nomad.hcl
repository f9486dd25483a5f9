# Example: one MinIO server for the repository, HTTPS only with the certificate `volback init`
# wrote, as docker-compose.yml runs it. Its files from the Nomad variable nomad/jobs/volback-minio,
# rendered into the task's secrets dir (/secrets: certs/ in MinIO's --certs-dir layout):
#   nomad var put nomad/jobs/volback-minio root_user=volback root_password=@secrets/minio-root-password \
#     public_crt=@secrets/tls/minio.crt private_key=@secrets/tls/minio.key ca_crt=@secrets/ca/ca.crt
# In production run MinIO distributed and erasure-coded. Needs a host volume `volback-minio`.

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "volback-minio" {
  type        = "service"
  datacenters = var.datacenters

  group "minio" {
    network {
      port "s3" {
        static = 9000
        to     = 9000
      }
      port "console" {
        to = 9001
      }
    }

    volume "minio-data" {
      type   = "host"
      source = "volback-minio"
    }

    service {
      name     = "volback-minio"
      provider = "nomad"
      port     = "s3"

      # Readiness only: the certificate is checked by the gateways (VOLBACK_S3_CA_FILE).
      check {
        type            = "http"
        protocol        = "https"
        tls_skip_verify = true
        path            = "/minio/health/ready"
        interval        = "10s"
        timeout         = "5s"
      }
    }

    task "minio" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        image = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
        args  = ["server", "/data", "--address", ":9000", "--console-address", ":9001", "--certs-dir", "/secrets/certs"]
        ports = ["s3", "console"]
      }

      volume_mount {
        volume      = "minio-data"
        destination = "/data"
      }

      env {
        MINIO_ROOT_PASSWORD_FILE = "/secrets/root-password"
        MINIO_UPDATE             = "off"
        MINIO_CALLHOME_ENABLE    = "off"
        MC_HOST_local            = "https://localhost:9000"
      }

      template {
        destination = "secrets/minio.env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/volback-minio" }}
          MINIO_ROOT_USER={{ .root_user }}
          {{ end }}
        EOT
      }

      template {
        destination = "secrets/root-password"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/volback-minio\" }}{{ .root_password }}{{ end }}"
      }

      template {
        destination = "secrets/certs/public.crt"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/volback-minio\" }}{{ .public_crt }}{{ end }}"
      }

      template {
        destination = "secrets/certs/private.key"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/volback-minio\" }}{{ .private_key }}{{ end }}"
      }

      template {
        destination = "secrets/certs/CAs/ca.crt"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/volback-minio\" }}{{ .ca_crt }}{{ end }}"
      }

      resources {
        cpu    = 1000
        memory = 2048
      }
    }
  }
}
