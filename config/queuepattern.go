package config

import (
	"path"
	"strings"
)

// A RabbitMQ queue signal's queues may name patterns as well as queues, so
// one entry reads any number of worker pools: worker.* is every queue
// whose name starts with "worker." (ELMA365 names a pool's queue by its
// routing key, the pool id or default). A pattern is matched against every
// queue of the vhost when the queues are read; * is any run of characters
// but /, ? one character, [abc] or [a-z] one of a class, \ escapes.

// IsQueuePattern reports whether a queues entry is a pattern rather than a
// queue's name.
func IsQueuePattern(entry string) bool { return strings.ContainsAny(entry, `*?[\`) }

// MatchQueue reports whether the queue name matches the entry: the same
// name, or a pattern it matches. A malformed pattern matches nothing (the
// config refuses it).
func MatchQueue(entry, name string) bool {
	if !IsQueuePattern(entry) {
		return entry == name
	}
	ok, err := path.Match(entry, name)
	return err == nil && ok
}

// checkQueueEntry refuses an empty entry and a malformed pattern.
func checkQueueEntry(v *validator, p, entry string) {
	switch {
	case strings.TrimSpace(entry) == "":
		v.add(p, "must name a queue or a pattern such as worker.*")
	case IsQueuePattern(entry):
		if _, err := path.Match(entry, ""); err != nil {
			v.add(p, "%q is not a valid pattern: * matches any characters but /, ? one character, [abc] or [a-z] one of a class, \\ escapes the next", entry)
		}
	}
}
