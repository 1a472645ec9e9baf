# Keys only the external amazon plugin (github.com/hashicorp/amazon >= 1.2) knows.
# Packer 1.6.6's built-in builder rejects them ("Unsupported argument/block"), so
# they are kept out of ringbolt.pkr.hcl. ami/bake merges the body of the source
# block below into the source block of the same name, and writes the packer
# block to versions.pkr.hcl. ami/tests/packer.bats checks this file with an HCL
# parser: only these blocks, only keys the core template lacks, and each key is
# really rejected by the old field set.

packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

source "amazon-ebs" "ringbolt" {
  # instances launched from the AMI default to IMDSv2 only
  imds_support = "v2.0"

  # the builder instance itself also requires IMDSv2 tokens
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
}
