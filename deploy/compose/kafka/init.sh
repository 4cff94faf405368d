#!/bin/bash
# Topics, SCRAM users and ACLs of the Schakel hub on the compose cluster (run once by the
# kafka-init service over the admin listener; every step is idempotent, so it can run again).
#
# The lists below follow the covenants in covenants/: tests/deploy/test_compose.py checks that
# every partner, recipient and topic here is one the code derives from them (topic names as in
# services/router/topics.py), and fails when a covenant adds a party that is missing here.
#
# A partner's user may write only its own signals.<partner> topic; a recipient's user may read
# only its own feed.<recipient> topic, in its own consumer group recipient.<recipient>.
set -euo pipefail

BIN=/opt/kafka/bin
: "${BOOTSTRAP:?the admin listener(s), host:port[,host:port]}"
: "${PASSWORDS:?folder with one SCRAM password file per user}"
REPLICAS=3

topic() {  # NAME PARTITIONS [KEY=VALUE]: created if missing, the extra config set either way
  local configs=(--config min.insync.replicas=2)
  if [ "$#" -gt 2 ]; then configs+=(--config "$3"); fi
  "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$1" --partitions "$2" --replication-factor "$REPLICAS" "${configs[@]}"
  if [ "$#" -gt 2 ]; then  # a topic made before the config was declared gets it too
    "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter --entity-type topics \
      --entity-name "$1" --add-config "$3" >/dev/null
  fi
}

# The broker, not the producer, stamps each signal with the moment it appended it: a partner
# producing here directly cannot backdate when the hub received its signal, which decides the
# outcomes it may be answered with (docs/outcomes.md; services/router/topics.py RECEIPT_TIME).
signal_topic() {  # NAME PARTITIONS
  topic "$1" "$2" message.timestamp.type=LogAppendTime
}

user() {  # NAME: a SCRAM-SHA-512 credential from $PASSWORDS/NAME
  local password
  password="$(cat "$PASSWORDS/$1")"
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter --entity-type users \
    --entity-name "$1" --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]" \
    >/dev/null
}

acl() {  # USER ARGS...: allow USER what ARGS say
  local who="$1"
  shift
  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --add --allow-principal "User:$who" \
    "$@" >/dev/null
}

partner() {  # NAME: may write signals.NAME, nothing else
  user "$1"
  acl "$1" --operation Write --operation Describe --topic "signals.$1"
  acl schakel-gateway --operation Write --operation Describe --topic "signals.$1"
}

recipient() {  # NAME: may read feed.NAME in group recipient.NAME, nothing else
  user "$1"
  acl "$1" --operation Read --operation Describe --topic "feed.$1"
  acl "$1" --operation Read --group "recipient.$1"
  acl schakel-gateway --operation Read --operation Describe --topic "feed.$1"
  # the gateway commits the pages a recipient has read through it in its own group of that
  # recipient (never the recipient's own group, which the recipient's client may hold), so
  # maintenance counts them consumed (and does not re-deliver them after a broker loss)
  acl schakel-gateway --operation Read --group "recipient.$1.gateway"
}

service() {  # NAME: the hub's own services, ACLs below
  user "$1"
}

# --- topics: signals.<partner> x6 partitions (up to 6 router workers), feed.<recipient> x3
signal_topic signals.chemiehandel-nh 6
signal_topic signals.elan-wonen 6
signal_topic signals.gemeente-alkmaar 6
signal_topic signals.gemeente-haarlem 6
signal_topic signals.gemeente-zaanstad 6
signal_topic signals.hhnk 6
signal_topic signals.hvc 6
signal_topic signals.liander 6
signal_topic signals.lto-meldpunt 6
signal_topic signals.meld-misdaad-anoniem 6
signal_topic signals.odnhn 6
signal_topic signals.om-nh 6
signal_topic signals.politie-nh 6
signal_topic signals.pwn 6
signal_topic signals.riec-nh 6
signal_topic signals.uwv 6
signal_topic signals.woonwaard 6
signal_topic signals.schakel 6
signal_topic signals.dead-letter 1
# the routers' write-ahead audit log: one partition, read in order by the one audit indexer
topic audit 1
topic feed.campagneteam-nh 3
topic feed.elan-wonen 3
topic feed.gemeente-alkmaar 3
topic feed.gemeente-haarlem 3
topic feed.gemeente-hollands-kroon 3
topic feed.gemeente-zaanstad 3
topic feed.hvc 3
topic feed.liander 3
topic feed.politie-nh 3
topic feed.pwn 3
topic feed.riec-nh 3
topic feed.woonwaard 3

# --- the hub's services
service schakel-router
service schakel-stacking
service schakel-gateway
service schakel-maintenance
service schakel-indexer
service schakel-outcomes
service schakel-riec
service schakel-web
# router: reads every signals topic, writes feeds and dead letters, one consumer group
acl schakel-router --operation Read --operation Describe --topic signals. --resource-pattern-type prefixed
acl schakel-router --operation Write --operation Describe --topic feed. --resource-pattern-type prefixed
acl schakel-router --operation Write --operation Describe --topic signals.dead-letter
acl schakel-router --operation Read --group schakel-router
acl schakel-router --operation Read --group schakel-router-host
# ... and the batch's audit records, feeds and offsets in one transaction (log-first router)
acl schakel-router --operation Write --operation Describe --topic audit
acl schakel-router --operation Write --operation Describe --transactional-id schakel-router. --resource-pattern-type prefixed
acl schakel-router --operation IdempotentWrite --cluster
# audit indexer: reads the audit log (read_committed) in its own group, writes PostgreSQL
acl schakel-indexer --operation Read --operation Describe --topic audit
acl schakel-indexer --operation Read --group schakel-audit-indexer
# stacking: reads every signals topic, publishes its alerts as the partner "schakel"
acl schakel-stacking --operation Read --operation Describe --topic signals. --resource-pattern-type prefixed
acl schakel-stacking --operation Write --operation Describe --topic signals.schakel
acl schakel-stacking --operation Read --group schakel-stacking
# outcomes: reads every signals topic, writes the returns to the partners' feeds, one group
acl schakel-outcomes --operation Read --operation Describe --topic signals. --resource-pattern-type prefixed
acl schakel-outcomes --operation Write --operation Describe --topic feed. --resource-pattern-type prefixed
acl schakel-outcomes --operation Read --group schakel-outcomes
# RIEC workplace reader: reads the RIECs' feeds in its own group (the RIEC's own clients keep
# theirs), writes nothing to Kafka
acl schakel-riec --operation Read --operation Describe --topic feed.riec-nh
acl schakel-riec --operation Read --group schakel-riec-workplace
# web: publishes the RIEC's hand-overs (signed by the RIEC) on its signals topic; reads the
# audit topic's end offsets and the indexer group's committed offsets (never joins the group)
acl schakel-web --operation Write --operation Describe --topic signals.riec-nh
acl schakel-web --operation Describe --topic audit
acl schakel-web --operation Describe --group schakel-audit-indexer
# maintenance: sees every topic (to notice lost ones) and may recreate them, re-delivers feed
# messages, and reads the committed offsets of the recipients' groups (never joins them)
# (signals topics: also check, and set where a topic lacks it, LogAppendTime at start-up)
acl schakel-maintenance --operation Describe --operation Create --operation DescribeConfigs --operation AlterConfigs --topic signals. --resource-pattern-type prefixed
acl schakel-maintenance --operation Describe --operation Create --operation Write --topic feed. --resource-pattern-type prefixed
acl schakel-maintenance --operation Describe --group recipient. --resource-pattern-type prefixed

# --- partners (publish signals; the gateway publishes on their behalf over HTTPS)
partner chemiehandel-nh
partner elan-wonen
partner gemeente-alkmaar
partner gemeente-haarlem
partner gemeente-zaanstad
partner hhnk
partner hvc
partner liander
partner lto-meldpunt
partner meld-misdaad-anoniem
partner odnhn
partner om-nh
partner politie-nh
partner pwn
partner riec-nh
partner uwv
partner woonwaard

# --- recipients (read their feed; the gateway serves it over HTTPS without a group)
recipient campagneteam-nh
recipient elan-wonen
recipient gemeente-alkmaar
recipient gemeente-haarlem
recipient gemeente-hollands-kroon
recipient gemeente-zaanstad
recipient hvc
recipient liander
recipient politie-nh
recipient pwn
recipient riec-nh
recipient woonwaard

echo "schakel: topics, users and ACLs are in place"
