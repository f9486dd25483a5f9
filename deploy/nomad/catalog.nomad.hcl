# volback's catalog: the HTTP API, the dashboard and the read model (SQLite in a host volume,
# rebuilt from the event log when lost). The same service as `catalog` in docker-compose.yml.
# Its files from the Nomad variable nomad/jobs/volback-catalog, rendered into the task's secrets
# dir (/secrets, 0600, node); write_token and read_token are optional further tokens:
#   nomad var put nomad/jobs/volback-catalog nats_nk=@secrets/identities/catalog.nk \
#     ca_crt=@secrets/ca/ca.crt tokens_json=@secrets/catalog/tokens.json
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
        VOLBACK_NATS_NKEY_FILE = "/secrets/nats.nk"
        VOLBACK_NATS_CA_FILE = "/secrets/ca.crt"
        VOLBACK_CATALOG_TOKENS_FILE = "/secrets/tokens.json"
        LOG_LEVEL            = "info"
      }

      template {
        destination = "secrets/nats.nk"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-catalog\" }}{{ .nats_nk }}{{ end }}"
      }

      template {
        destination = "secrets/ca.crt"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-catalog\" }}{{ .ca_crt }}{{ end }}"
      }

      template {
        destination = "secrets/tokens.json"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-catalog\" }}{{ .tokens_json }}{{ end }}"
      }

      template {
        destination = "secrets/catalog.env"
        env         = true
        data        = <<-EOT
          VOLBACK_NATS_URL={{ range $i, $s := nomadService "volback-nats" }}{{ if $i }},{{ end }}nats://{{ .Address }}:{{ .Port }}{{ end }}
          {{ with nomadVar "nomad/jobs/volback-catalog" }}
          VOLBACK_CATALOG_WRITE_TOKEN={{ index . "write_token" }}
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
