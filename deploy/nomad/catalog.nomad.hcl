# volback's catalog: the HTTP API, the dashboard and the read model (SQLite in a host volume,
# rebuilt from the event log when lost). The same service as `catalog` in docker-compose.yml.
# Secrets from the Nomad variable nomad/jobs/volback-catalog: write_token (and read_token).
# Needs, on the client it runs on, a host volume `volback-catalog`.

variable "image" {
  type    = string
  default = "volback:local"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "volback-catalog" {
  type        = "service"
  datacenters = var.datacenters

  group "catalog" {
    network {
      port "http" {
        static = 8080
        to     = 8080
      }
      port "ops" {
        to = 9400
      }
    }

    volume "catalog-data" {
      type   = "host"
      source = "volback-catalog"
    }

    service {
      name     = "volback-catalog"
      provider = "nomad"
      port     = "ops"

      check {
        type     = "http"
        path     = "/readyz"
        interval = "15s"
        timeout  = "5s"
      }
    }

    task "catalog" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        image = var.image
        args  = ["catalog"]
        init  = true
        ports = ["http", "ops"]
      }

      volume_mount {
        volume      = "catalog-data"
        destination = "/data"
      }

      env {
        VOLBACK_DATA_DIR     = "/data"
        VOLBACK_CATALOG_HOST = "0.0.0.0"
        VOLBACK_CATALOG_PORT = "8080"
        LOG_LEVEL            = "info"
      }

      template {
        destination = "secrets/catalog.env"
        env         = true
        data        = <<-EOT
          VOLBACK_NATS_URL={{ range $i, $s := nomadService "volback-nats" }}{{ if $i }},{{ end }}nats://{{ .Address }}:{{ .Port }}{{ end }}
          {{ with nomadVar "nomad/jobs/volback-catalog" }}
          VOLBACK_CATALOG_WRITE_TOKEN={{ .write_token }}
          VOLBACK_CATALOG_READ_TOKEN={{ index . "read_token" }}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
