"""Where a kevolve search job runs: locally, on GitHub Actions self-hosted runners, or over Ray."""
