#!/bin/sh
# Makes ./secrets/ and ./.env for compose.yaml (neither is committed; run once, nothing that
# exists is overwritten): the hub's key file and, apart, its checkpoint signing key (for the
# router and stacking only), the stacking service's and the RIEC's signing keys, one SCRAM
# password per Kafka user named in kafka/init.sh, and the PostgreSQL and Grafana passwords.
# Needs docker; builds the hub image to run `schakel keys` in it.
set -eu
cd "$(dirname "$0")"
umask 077
IMAGE=schakel:0.1.0
mkdir -p secrets/kafka

password() { [ -s "$1" ] || head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$1"; }

password secrets/postgres-password
password secrets/grafana-password
for user in $(awk '$1 == "partner" || $1 == "recipient" || $1 == "service" { print $2 }' kafka/init.sh | sort -u); do
  password "secrets/kafka/$user"
done
[ -f .env ] || printf 'POSTGRES_PASSWORD=%s\n' "$(cat secrets/postgres-password)" >.env

docker build -f ../Dockerfile -t "$IMAGE" ../..
if [ ! -f secrets/keys.json ]; then
  docker run --rm --user 0 -v "$PWD/secrets:/out" --entrypoint /bin/sh "$IMAGE" -c '
    su -s /bin/sh schakel -c "schakel keys init --path /tmp/keys.json >/dev/null" &&
    mv /tmp/keys.json /tmp/keys.signing.json /out/'
elif [ ! -f secrets/keys.signing.json ]; then
  # a key file from before the signing key had its own file: split it
  docker run --rm --user 0 -v "$PWD/secrets:/out" --entrypoint /bin/sh "$IMAGE" -c '
    schakel keys migrate --path /out/keys.json'
fi
if [ ! -f secrets/stacking-key.json ]; then
  echo "the stacking service's signing key; register this public block for party 'schakel':"
  docker run --rm --user 0 -v "$PWD/secrets:/out" --entrypoint /bin/sh "$IMAGE" -c '
    mkdir -p /tmp/k && schakel keys partner schakel --out /tmp/k &&
    mv /tmp/k/*.key /out/stacking-key.json'
fi
if [ ! -f secrets/riec-key.json ]; then
  echo "the RIEC's signing key for hand-overs (web); register this public block for party 'riec-nh':"
  docker run --rm --user 0 -v "$PWD/secrets:/out" --entrypoint /bin/sh "$IMAGE" -c '
    mkdir -p /tmp/k && schakel keys partner riec-nh --out /tmp/k &&
    mv /tmp/k/*.key /out/riec-key.json'
fi
# each file readable only by the user of the container that reads it
docker run --rm --user 0 -v "$PWD/secrets:/out" --entrypoint /bin/sh "$IMAGE" -c '
  chown -R 10001:10001 /out/kafka /out/keys.json /out/keys.signing.json /out/stacking-key.json /out/riec-key.json &&
  chmod 0700 /out/kafka &&
  chmod 0600 /out/kafka/* /out/keys.json /out/keys.signing.json /out/stacking-key.json /out/riec-key.json &&
  chown 999:999 /out/postgres-password && chown 472:472 /out/grafana-password &&
  chmod 0400 /out/postgres-password /out/grafana-password && chmod 0755 /out'
echo "secrets are in $(pwd)/secrets; now: docker compose up -d"
