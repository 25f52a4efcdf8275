// Package rabbittest starts a real RabbitMQ broker with its management
// plugin as the current user in a temp dir on free 127.0.0.1 ports, and
// drives its queues through the management API.
package rabbittest
