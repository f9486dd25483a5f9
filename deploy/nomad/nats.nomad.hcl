# Example: one NATS server with JetStream for volback (its configuration is infra/nats's). In
# production run a 3-node JetStream cluster (R3 streams, VOLBACK_STREAM_REPLICAS=3) with TLS
# and per-service credentials. Needs a host volume `volback-nats` on the client.

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "volback-nats" {
  type        = "service"
  datacenters = var.datacenters

  group "nats" {
    network {
      port "client" {
        static = 4222
        to     = 4222
      }
      port "monitor" {
        to = 8222
      }
    }

    volume "nats-data" {
      type   = "host"
      source = "volback-nats"
    }

    service {
      name     = "volback-nats"
      provider = "nomad"
      port     = "client"

      check {
        type     = "http"
        port     = "monitor"
        path     = "/healthz?js-enabled-only=true"
        interval = "10s"
        timeout  = "5s"
      }
    }

    task "nats" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        image = "nats:2.12-alpine"
        args  = ["nats-server", "--config", "/local/nats-server.conf"]
        init  = true
        ports = ["client", "monitor"]
      }

      volume_mount {
        volume      = "nats-data"
        destination = "/data"
      }

      template {
        destination = "local/nats-server.conf"
        data        = <<-EOT
          # NATS for volback (docker-compose): JetStream on, file store under /data.
          # restic chunks reach 8 MiB: the data path needs max_payload above NATS's 1 MB default.
          server_name: volback-nats
          listen: 0.0.0.0:4222
          http: 0.0.0.0:8222
          max_payload: 16777216
          jetstream {
            store_dir: /data
          }
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
