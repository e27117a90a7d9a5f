"""notify's ports to the outside world: database, PDF, vault, webhook, Kafka, letter channels."""
