package agent

import (
	"strconv"
	"testing"
)

// TestProcTableForgetsOldestEnded: beyond maxEnded ended processes the oldest ended ones are
// forgotten; running ones never are.
func TestProcTableForgetsOldestEnded(t *testing.T) {
	tab := procTable{m: map[string]*process{}}
	running := tab.add([]string{"server"})
	var ended []*process
	for i := range maxEnded + 10 {
		p := tab.add([]string{"job", strconv.Itoa(i)})
		p.finish(0)
		ended = append(ended, p)
	}
	// Pruning happens on add: this one (still running while added) leaves the newest maxEnded
	// ended processes.
	trigger := tab.add([]string{"trigger"})
	if tab.get(running.id) == nil || tab.get(trigger.id) == nil {
		t.Fatal("a running process was forgotten")
	}
	for i, p := range ended {
		if got := tab.get(p.id) != nil; got != (i >= 10) {
			t.Fatalf("ended process %d (%s) remembered = %v", i, p.id, got)
		}
	}
	if n := len(tab.m); n != maxEnded+2 {
		t.Fatalf("%d processes remembered, want %d", n, maxEnded+2)
	}
}
