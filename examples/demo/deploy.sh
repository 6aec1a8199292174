#!/bin/sh
# A stand-in for a deploy script that is careless with secrets: jobsecrets masks all of this.
echo "connecting as $DB_USER with password $DB_PASSWORD"
echo "stripe key, base64: $(printf %s "$STRIPE_KEY" | base64)"
echo "stripe key, hex:    $(printf %s "$STRIPE_KEY" | od -An -tx1 | tr -d ' \n')"
echo "TLS key file: $TLS_KEY ($(wc -c < "$TLS_KEY") bytes, mode $(stat -c %a "$TLS_KEY"))"
echo "feature flag: ${FEATURE_FLAG:-<not set: optional and missing>}"
