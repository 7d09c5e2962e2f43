package local

// Check is one line of the doctor report.
type Check struct {
	// Name says what was checked ("bwrap", "user namespaces", ...).
	Name string
	// OK is true when the check passed.
	OK bool
	// Detail says what was found.
	Detail string
	// Fix says what to do when the check failed (empty when OK).
	Fix string
}
