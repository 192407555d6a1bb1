# The least a tether daemon's OpenBao token needs, for the default mount `secret` (KV v2)
# and prefix `tether`. Change both names if your [[vault.locations]] entry uses others.
#   bao policy write tether dist/openbao-policy.hcl
#   bao write auth/approle/role/tether-agent token_policies=tether   # or a token with it

# One secret per credential (each version is a generation), and the HA leases under
# tether/_leases/: read, write with check-and-set.
path "secret/data/tether/*" {
  capabilities = ["create", "read", "update"]
}

# Versions and listing (history, reconcile, the cheap check).
path "secret/metadata/tether" {
  capabilities = ["list"]
}
path "secret/metadata/tether/*" {
  capabilities = ["read", "list"]
}

# History beyond `keep` is destroyed; a damaged version is soft-deleted for inspection.
path "secret/destroy/tether/*" {
  capabilities = ["update"]
}
path "secret/delete/tether/*" {
  capabilities = ["update"]
}
