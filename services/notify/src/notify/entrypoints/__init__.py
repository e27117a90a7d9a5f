"""How events and requests reach notify: the Kafka consumer and the HTTP routes."""
