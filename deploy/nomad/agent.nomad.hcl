# volback's agent on every Docker host of the cluster: a system job (one allocation per client).
# The same service as `agent` in docker-compose.yml (infra/deploy checks that they agree).
# Needs the docker plugin with `volumes { enabled = true }` (the socket and volumes binds) and,
# on each client, a host volume `volback-agent-state` (the host id lives there, see README.md)
# and a read-only host volume `volback-agent-secrets`: that client's own identity, the three
# files of `volback init agent <client>` (nats.nk, agent.json, ca.crt, 0600 root; README.md). A
# host volume, not a Nomad variable: every client holds its own key and no other.

variable "image" {
  type        = string
  default     = "volback:local"
  description = "the volback image (Dockerfile), on every client or in your registry"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "volback-agent" {
  type        = "system"
  datacenters = var.datacenters

  group "agent" {
    network {
      port "ops" {
        to = 9400
      }
    }

    volume "agent-state" {
      type   = "host"
      source = "volback-agent-state"
    }

    volume "agent-secrets" {
      type      = "host"
      source    = "volback-agent-secrets"
      read_only = true
    }

    service {
      name     = "volback-agent"
      provider = "nomad"
      port     = "ops"

      # The image's health check (deploy/image/healthcheck.ts) asks the same: GET /readyz.
      check {
        type     = "http"
        path     = "/readyz"
        interval = "15s"
        timeout  = "5s"
      }
    }

    task "agent" {
      driver = "docker"
      # Root: the Docker socket, and volume files that belong to any user.
      user         = "root"
      kill_timeout = "30s"

      config {
        image = var.image
        args  = ["agent"]
        init  = true
        ports = ["ops"]
        volumes = [
          "/var/run/docker.sock:/var/run/docker.sock",
          # Read-only, at the engine's own path: volumes are read in place.
          "/var/lib/docker/volumes:/var/lib/docker/volumes:ro",
        ]
      }

      volume_mount {
        volume      = "agent-state"
        destination = "/var/lib/volback-agent"
      }

      volume_mount {
        volume      = "agent-secrets"
        destination = "/etc/volback"
        read_only   = true
      }

      env {
        VOLBACK_NATS_NKEY_FILE  = "/etc/volback/nats.nk"
        VOLBACK_HOST_ID_FILE    = "/etc/volback/agent.json"
        VOLBACK_NATS_CA_FILE    = "/etc/volback/ca.crt"
        DOCKER_HOST             = "unix:///var/run/docker.sock"
        VOLBACK_AGENT_STATE_DIR = "/var/lib/volback-agent"
        VOLBACK_HOST_NAME       = "${node.unique.name}"
        VOLBACK_HELPER_IMAGE    = var.image
        LOG_LEVEL               = "info"
      }

      template {
        destination = "local/nats.env"
        env         = true
        data        = <<-EOT
          VOLBACK_NATS_URL={{ range $i, $s := nomadService "volback-nats" }}{{ if $i }},{{ end }}nats://{{ .Address }}:{{ .Port }}{{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
