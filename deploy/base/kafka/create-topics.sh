#!/usr/bin/env bash
# Create every topic in topics.txt (next to this script) unless it exists, with its
# partitions, replication, cleanup policy and retention. Safe to run again: an existing
# topic is left alone (its settings are changed with kafka-configs.sh, on purpose).
# Runs in the official apache/kafka image: the Compose `topics` job and the Kubernetes
# `proactive-topics` Job.
#   KAFKA_BOOTSTRAP     the brokers, e.g. kafka:9092
#   REPLICATION_FACTOR  copies of each partition (1 on one machine, 3 in production)
#   MIN_INSYNC_REPLICAS copies that must have a write before it is acknowledged
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BOOTSTRAP="${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP, e.g. kafka:9092}"
REPLICATION="${REPLICATION_FACTOR:-1}"
MIN_ISR="${MIN_INSYNC_REPLICAS:-1}"
TOPICS_BIN="${KAFKA_TOPICS_BIN:-/opt/kafka/bin/kafka-topics.sh}"

for attempt in $(seq 1 30); do
  if "$TOPICS_BIN" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; then break; fi
  echo "Kafka is not answering at $BOOTSTRAP yet (attempt $attempt of 30)…"
  sleep 5
done

while read -r name partitions cleanup days; do
  case "$name" in ''|'#'*) continue ;; esac
  configs=(--config "cleanup.policy=$cleanup" --config "min.insync.replicas=$MIN_ISR")
  if [[ "$cleanup" == "delete" ]]; then
    configs+=(--config "retention.ms=$((days * 24 * 60 * 60 * 1000))")
  fi
  "$TOPICS_BIN" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
    --partitions "$partitions" --replication-factor "$REPLICATION" "${configs[@]}"
  echo "topic $name: $partitions partition(s), $cleanup, replication $REPLICATION"
done <"$HERE/topics.txt"
