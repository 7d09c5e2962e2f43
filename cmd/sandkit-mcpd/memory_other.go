//go:build !linux

package main

// totalMemory is unknown here: the local provider, which applies the limit, is Linux-only.
func totalMemory() int64 { return 0 }
