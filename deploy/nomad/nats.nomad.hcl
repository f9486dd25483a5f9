# Example: one NATS server with JetStream for volback, with the configuration `volback init`
# wrote (TLS, one nkey user per identity), as docker-compose.yml runs it. Its files from the
# Nomad variable nomad/jobs/volback-nats, rendered at the paths the configuration names
# (README.md: the set-up written with the image, so that they are /app/.volback/secrets/…):
#   nomad var put nomad/jobs/volback-nats config=@secrets/nats/nats-server.conf \
#     nats_crt=@secrets/tls/nats.crt nats_key=@secrets/tls/nats.key
# A new, rotated or revoked agent: put `config` again; Nomad re-renders it and sends SIGHUP (a
# reload). In production run a 3-node JetStream cluster (R3 streams, VOLBACK_STREAM_REPLICAS=3).
# Needs a host volume `volback-nats` on the client and the docker plugin's `volumes` enabled.

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
        args = [
          "nats-server", "--config", "/app/.volback/secrets/nats/nats-server.conf",
          "--http_port", "8222", "--pid", "/tmp/nats-server.pid",
        ]
        init  = true
        ports = ["client", "monitor"]
        # The task's secrets dir at the paths the configuration names (read-only).
        volumes = [
          "secrets/nats:/app/.volback/secrets/nats:ro",
          "secrets/tls:/app/.volback/secrets/tls:ro",
        ]
      }

      volume_mount {
        volume      = "nats-data"
        destination = "/data"
      }

      template {
        destination   = "secrets/nats/nats-server.conf"
        perms         = "0600"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = "{{ with nomadVar \"nomad/jobs/volback-nats\" }}{{ .config }}{{ end }}"
      }

      template {
        destination = "secrets/tls/nats.crt"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/volback-nats\" }}{{ .nats_crt }}{{ end }}"
      }

      template {
        destination = "secrets/tls/nats.key"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/volback-nats\" }}{{ .nats_key }}{{ end }}"
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
