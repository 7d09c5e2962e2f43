//go:build !linux

package helper

import "errors"

// Run refuses the helper roles (the local provider runs on Linux only) and reports that any other
// role is not one of this package's.
func Run(role string, args []string) (bool, error) {
	if role == RoleHelper || role == RoleSpare {
		return true, errors.New("the local provider runs on Linux only")
	}
	return false, nil
}
