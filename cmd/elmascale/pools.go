package main

import (
	"context"
	"fmt"
	"io"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
)

// queueLister is a collector that can name RabbitMQ's queues.
type queueLister interface {
	ListQueues(ctx context.Context, vhosts []string) (config.QueueNames, error)
}

// printTemplates says what each service template expands from.
func printTemplates(w io.Writer, cfg *config.Config) {
	if cfg.Pools == nil {
		return
	}
	for _, t := range cfg.Pools.Templates {
		fmt.Fprintf(w, "  %s: a template, one service %s-<pool> per queue %s in vhost %s (at most %d; a vanished queue's service is kept %s, held)\n",
			t.Service, t.Service, t.Queue, t.VHost, t.MaxPools, t.GracePeriod)
	}
}

// printExpansion lists the services the templates expanded to and the
// queues refused, each with its reason.
func printExpansion(w io.Writer, cfg *config.Config) {
	if cfg.Pools == nil {
		return
	}
	for _, p := range cfg.Pools.Services {
		fmt.Fprintf(w, "  pool %s (queue %s): service %s → %s/%s\n", p.Pool, p.Queue, p.Service, p.Target.Kind, p.Target.Name)
	}
	for _, r := range cfg.Pools.Refused {
		fmt.Fprintf(w, "  queue %s refused: %s\n", r.Queue, r.Reason)
	}
	if len(cfg.Pools.Services) == 0 && len(cfg.Pools.Refused) == 0 {
		fmt.Fprintln(w, "  no queue fits a template: no pool service")
	}
}

// expandLive expands the config's templates over the queues the collector
// lists; a config without templates, or whose queues cannot be listed, is
// returned as it is (the latter said on stderr).
func expandLive(ctx context.Context, command string, cfg *config.Config, col loop.Collector, stderr io.Writer) (*config.Config, error) {
	if cfg.Pools == nil {
		return cfg, nil
	}
	l, ok := col.(queueLister)
	if !ok {
		fmt.Fprintln(stderr, command+": the service templates need --rabbitmq to find their pools; none expanded")
		return cfg, nil
	}
	var vhosts []string
	for _, t := range cfg.Pools.Templates {
		vhosts = append(vhosts, t.VHost)
	}
	queues, err := l.ListQueues(ctx, vhosts)
	if err != nil {
		// The rest of the config is still worth deciding on or checking.
		fmt.Fprintf(stderr, "%s: cannot list RabbitMQ's queues for the service templates, none expanded: %v\n", command, err)
		return cfg, nil
	}
	out, err := cfg.Expand(queues)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(stderr, command+": service templates expanded over RabbitMQ's queues:")
	printExpansion(stderr, out)
	return out, nil
}
