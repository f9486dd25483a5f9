# Example: one MinIO server for the repository. In production run MinIO distributed and
# erasure-coded, with TLS. Root credentials from the Nomad variable nomad/jobs/volback-minio
# (root_user, root_password); needs a host volume `volback-minio` on the client.

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

      check {
        type     = "http"
        path     = "/minio/health/ready"
        interval = "10s"
        timeout  = "5s"
      }
    }

    task "minio" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        image = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
        args  = ["server", "/data", "--address", ":9000", "--console-address", ":9001"]
        ports = ["s3", "console"]
      }

      volume_mount {
        volume      = "minio-data"
        destination = "/data"
      }

      env {
        MINIO_UPDATE          = "off"
        MINIO_CALLHOME_ENABLE = "off"
      }

      template {
        destination = "secrets/minio.env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/volback-minio" }}
          MINIO_ROOT_USER={{ .root_user }}
          MINIO_ROOT_PASSWORD={{ .root_password }}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 1000
        memory = 2048
      }
    }
  }
}
