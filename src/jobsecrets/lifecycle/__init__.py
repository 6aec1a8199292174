"""What has a lifetime: the lease ledger, renewal while the job runs, and the state file for `revoke`."""
