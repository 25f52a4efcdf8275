# Real Prometheus and RabbitMQ for the collector's integration tests
# (internal/promtest, internal/rabbittest start them on 127.0.0.1 per test
# binary). Installed from Debian's packages; idempotent and quick once done.
.PHONY: setup-prometheus-rabbitmq
setup: setup-prometheus-rabbitmq

setup-prometheus-rabbitmq:
	@bash $(CURDIR)/hack/setup-prometheus-rabbitmq.sh
