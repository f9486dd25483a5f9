# volback's scheduler: leader-elected through NATS, so a second replica stands by.
# The same service as `scheduler` in docker-compose.yml. Its NATS identity from the Nomad variable
# nomad/jobs/volback-scheduler, rendered into the task's secrets dir (/secrets, 0600, node):
#   nomad var put nomad/jobs/volback-scheduler nats_nk=@secrets/identities/scheduler.nk ca_crt=@secrets/ca/ca.crt

variable "image" {
  type    = string
  default = "volback:local"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "volback-scheduler" {
  type        = "service"
  datacenters = var.datacenters

  group "scheduler" {
    count = 2

    network {
      port "ops" {
        to = 9400
      }
    }

    service {
      name     = "volback-scheduler"
      provider = "nomad"
      port     = "ops"

      check {
        type     = "http"
        path     = "/readyz"
        interval = "15s"
        timeout  = "5s"
      }
    }

    task "scheduler" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        image = var.image
        args  = ["scheduler"]
        init  = true
        ports = ["ops"]
      }

      env {
        VOLBACK_NATS_NKEY_FILE                       = "/secrets/nats.nk"
        VOLBACK_NATS_CA_FILE                         = "/secrets/ca.crt"
        VOLBACK_SCHEDULER_DEFAULT_POLICY             = "all"
        VOLBACK_SCHEDULER_DEFAULT_SCHEDULE           = "0 2 * * *"
        VOLBACK_SCHEDULER_DEFAULT_TIMEZONE           = "UTC"
        VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS = "60"
        LOG_LEVEL                                    = "info"
      }

      template {
        destination = "secrets/nats.nk"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-scheduler\" }}{{ .nats_nk }}{{ end }}"
      }

      template {
        destination = "secrets/ca.crt"
        perms       = "0600"
        uid         = 1000
        gid         = 1000
        data        = "{{ with nomadVar \"nomad/jobs/volback-scheduler\" }}{{ .ca_crt }}{{ end }}"
      }

      template {
        destination = "local/nats.env"
        env         = true
        data        = <<-EOT
          VOLBACK_NATS_URL={{ range $i, $s := nomadService "volback-nats" }}{{ if $i }},{{ end }}nats://{{ .Address }}:{{ .Port }}{{ end }}
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
