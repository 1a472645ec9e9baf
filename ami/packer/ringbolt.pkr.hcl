# ringbolt AMI: Graviton (arm64), ENA, ringbolt built natively on the builder.
#
# This file holds only keys that Packer's built-in amazon-ebs builder (the field
# set of Packer 1.6.6, as packaged by Debian) knows, so `packer validate` checks it
# offline. Keys that only the external amazon plugin knows (IMDSv2 enforcement,
# required_plugins) live in plugin-only.hcl; ami/bake merges both for a real build.
# See docs/runbook.md ("Bake").

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type        = string
  default     = "c8g.2xlarge"
  description = "Builder instance: Graviton, so ringbolt compiles natively (no cross toolchain)."
}

variable "distro" {
  type    = string
  default = "ubuntu-24.04"
  validation {
    condition     = contains(["ubuntu-24.04", "al2023"], var.distro)
    error_message = "The distro variable must be ubuntu-24.04 or al2023."
  }
}

variable "ringbolt_src" {
  type        = string
  default     = "../../build/ringbolt-src.tar.gz"
  description = "Source tarball of the ringbolt workspace (ami/bake makes it with git archive)."
}

variable "repo_root" {
  type        = string
  default     = "../.."
  description = "Checkout holding tuning/, ami/ and docs/ (ami/bake passes an absolute path)."
}

variable "onnxruntime_version" {
  type    = string
  default = "1.31.1"
}

variable "rust_toolchain" {
  type    = string
  default = "stable"
}

variable "volume_size_gb" {
  type    = number
  default = 30
}

locals {
  stamp = formatdate("YYYYMMDD-hhmmss", timestamp())
  source_filter = {
    "ubuntu-24.04" = {
      name  = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"
      owner = "099720109477"
      user  = "ubuntu"
      root  = "/dev/sda1"
    }
    "al2023" = {
      name  = "al2023-ami-2023.*-kernel-6.*-arm64"
      owner = "137112412989"
      user  = "ec2-user"
      root  = "/dev/xvda"
    }
  }
  src = local.source_filter[var.distro]
}

source "amazon-ebs" "ringbolt" {
  region          = var.region
  instance_type   = var.instance_type
  ami_name        = "ringbolt-${var.distro}-arm64-${local.stamp}"
  ami_description = "ringbolt trading appliance (${var.distro}, arm64, tuned)"
  ssh_username    = local.src.user
  ena_support     = true

  source_ami_filter {
    filters = {
      name                  = local.src.name
      architecture          = "arm64"
      "virtualization-type" = "hvm"
      "root-device-type"    = "ebs"
    }
    owners      = [local.src.owner]
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = local.src.root
    volume_size           = var.volume_size_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  tags = {
    Name     = "ringbolt-${var.distro}-arm64"
    distro   = var.distro
    built_at = local.stamp
  }
}

build {
  sources = ["source.amazon-ebs.ringbolt"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/ringbolt-ops /tmp/ringbolt-build"]
  }

  provisioner "file" {
    source      = var.ringbolt_src
    destination = "/tmp/ringbolt-build/ringbolt-src.tar.gz"
  }

  provisioner "file" {
    source      = "${var.repo_root}/tuning"
    destination = "/tmp/ringbolt-ops"
  }

  provisioner "file" {
    source      = "${var.repo_root}/ami"
    destination = "/tmp/ringbolt-ops"
  }

  provisioner "file" {
    source      = "${var.repo_root}/docs"
    destination = "/tmp/ringbolt-ops"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    environment_vars = [
      "RINGBOLT_DISTRO=${var.distro}",
      "ONNXRUNTIME_VERSION=${var.onnxruntime_version}",
      "RUST_TOOLCHAIN=${var.rust_toolchain}",
    ]
    scripts = [
      "${var.repo_root}/ami/provision/10-packages.sh",
      "${var.repo_root}/ami/provision/20-onnxruntime.sh",
      "${var.repo_root}/ami/provision/30-release.sh",
      "${var.repo_root}/ami/provision/40-install.sh",
    ]
  }

  post-processor "manifest" {
    output = "packer-manifest.json"
  }
}
