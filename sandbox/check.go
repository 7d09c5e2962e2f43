package sandbox

// Check is one line of a provider's diagnosis (what `sandkit-mcp doctor` prints): the local
// provider's Diagnose and the Vercel provider's each return a list of them.
type Check struct {
	// Name says what was checked ("bwrap", "user namespaces", "vercel API", ...).
	Name string
	// OK is true when the check passed.
	OK bool
	// Detail says what was found.
	Detail string
	// Fix says what to do when the check failed (empty when OK).
	Fix string
}
