package local

// Usable says why this system cannot run the local provider at all: nil, since it is Linux
// (elsewhere there are no namespaces, overlayfs or bubblewrap). Whether this host allows what
// the provider needs is Diagnose's question, and New's.
func Usable() error { return nil }
