package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/store"
)

// Egress policies. The rules, enforced here:
//
//  1. Every policy an agent gives is normalized (policies.Normalize) and must lie within the
//     operator's limit (Options.MaxPolicy, policies.Within), wherever it is given.
//  2. A workspace's default policy (create_workspace, set_policy) and a template's setup policy
//     are durable: they are stored, so they must not hold a literal secret (policies.Durable);
//     their credentials come from the server's environment when a sandbox starts.
//  3. Per-run (run_command) and per-session (open_session) overrides may hold literal secrets.
//     They are applied to that run's or session's sandbox and stored only redacted
//     (policies.Redact): a run or session record describes the policy, never its secrets.
//  4. A run or session without an override uses the workspace's default as it is when its
//     sandbox starts; a default that the operator's limit no longer admits is refused then.
//  5. set_policy changes a durable default, so it follows the lease rule of durable operations:
//     while a session holds the workspace only that session's holder may change it, and then
//     the live sandbox switches too (unless the session has its own override).
//  6. What is shown (get_workspace, runs, sessions) names credentials — the environment
//     variable or "literal value (redacted)" — never their values.

// policyUse says where a policy is used: it decides which checks apply and how errors read.
type policyUse int

const (
	useDefault policyUse = iota // a workspace's durable default
	useRun                      // run_command's per-run override
	useSession                  // open_session's per-session override
)

// checkPolicy validates a policy an agent gave for use and returns it normalized. The policies
// package's messages already say what to change; they are kept word for word.
func (e *Engine) checkPolicy(p policies.Policy, use policyUse) (policies.Policy, error) {
	n, err := policies.Normalize(p)
	if err != nil {
		return policies.Policy{}, errorf(ErrPolicy, "%w", err).with(ErrorFields{Argument: "policy"})
	}
	if use == useDefault {
		if err := policies.Durable(n); err != nil {
			return policies.Policy{}, errorf(ErrPolicy, "%w", err).with(ErrorFields{Argument: "policy"})
		}
	}
	if err := e.withinLimit(n); err != nil {
		return policies.Policy{}, err
	}
	return n, nil
}

// withinLimit fails when p is wider than the operator's limit.
func (e *Engine) withinLimit(p policies.Policy) error {
	if e.maxPol == nil {
		return nil
	}
	if err := policies.Within(p, *e.maxPol); err != nil {
		return errorf(ErrPolicy, "%w (the limit is max_policy in this server's config)", err)
	}
	return nil
}

// describePolicy is the stored and shown description of a policy: redacted first, so a literal
// secret of an override can never reach a record.
func describePolicy(p policies.Policy) string {
	return policies.Redact(p).String()
}

// redacted returns a redacted copy of p for storage.
func redacted(p policies.Policy) *policies.Policy {
	r := policies.Redact(p)
	return &r
}

// defaultPolicyUsable checks, when a sandbox is about to start with a workspace's stored default,
// that the operator's limit still admits it (the limit may have narrowed since it was set).
func (e *Engine) defaultPolicyUsable(w store.Workspace) error {
	if err := e.withinLimit(w.Policy); err != nil {
		return fmt.Errorf("workspace %q's policy %s was set before the operator narrowed the limit: %w; "+
			"set_policy with a narrower policy makes the workspace usable again", w.Name, w.Policy.String(), err)
	}
	return nil
}

// policyWarnings tells the agent what will keep a policy from working as written on this server:
// egress the provider does not enforce, and credentials that cannot be read from the server's
// environment (then sandboxes with this policy cannot start).
func (e *Engine) policyWarnings(p policies.Policy) []string {
	var out []string
	if p.Mode != policies.DenyAll && !e.prov.Capabilities().Egress {
		out = append(out, fmt.Sprintf("egress policy %q is stored but not enforced by the %s provider: commands in this workspace have no network access at all", p.String(), e.prov.Name()))
	}
	if _, err := policies.Compile(p, e.getenv); errors.Is(err, policies.ErrCredential) {
		out = append(out, fmt.Sprintf("%v: sandboxes with this policy cannot start until the operator sets it in the environment of the sandkit-mcp daemon (and restarts it), or a run or session gives its own policy", err))
	}
	return out
}

// SetPolicy replaces a workspace's default egress policy: the policy every later run_command,
// open_session and (for reads and writes) file sandbox of the workspace starts with, unless a run
// or session gives its own. The policy must be durable (no literal secrets) and within the
// operator's limit.
//
// It is a durable operation: it waits for the workspace's queued work (so runs queued before it
// keep the old policy) and is refused while a session holds the workspace — except for the
// session's holder h, for whom the new default also takes effect in the live sandbox at once
// (unless the session has its own policy override, which keeps precedence until the session
// ends; a sandbox that cannot switch keeps its policy, and the result warns about it).
func (e *Engine) SetPolicy(ctx context.Context, h Holder, ref string, p policies.Policy) (Workspace, error) {
	if e.isClosed() {
		return Workspace{}, ErrClosed
	}
	pol, err := e.checkPolicy(p, useDefault)
	if err != nil {
		return Workspace{}, err
	}
	w, err := e.lookup(ref)
	if err != nil {
		return Workspace{}, err
	}
	if err := e.policyLease(w, h); err != nil {
		return Workspace{}, err
	}
	var out store.Workspace
	var notes []string
	var jerr error
	j := e.enqueue(w.ID, func(jctx context.Context) {
		out, notes, jerr = e.setPolicy(jctx, h, w.ID, pol)
	})
	select {
	case <-j.done:
	case <-ctx.Done():
		if e.withdraw(j) {
			return Workspace{}, errorf(ErrCancelled, "set_policy was cancelled before it started; the policy is unchanged")
		}
		<-j.done
	}
	if errors.Is(jerr, store.ErrNotFound) {
		return Workspace{}, errorf(ErrNotFound, "workspace %q was deleted", ref)
	}
	if jerr != nil {
		return Workspace{}, jerr
	}
	e.log.Info("workspace policy set", "workspace", out.ID, "policy", out.Policy.String())
	v := e.view(out)
	v.Warnings = append(notes, v.Warnings...)
	return v, nil
}

// policyLease fails with a lease error when a session holds w and h is not its holder.
func (e *Engine) policyLease(w store.Workspace, h Holder) error {
	return e.st.View(func(tx *store.Tx) error {
		cur, err := tx.Workspace(w.ID)
		if err != nil {
			return err
		}
		_, err = policyLeaseTx(tx, cur, h)
		return err
	})
}

// policyLeaseTx returns the open session holding w when h holds it (nil when none is open), and
// a lease error naming the session when another connection holds it.
func policyLeaseTx(tx *store.Tx, w store.Workspace, h Holder) (*store.Session, error) {
	if w.Session == "" {
		return nil, nil
	}
	s, err := tx.Session(w.Session)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.Open()) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if h.Conn == "" || s.HolderConn != h.Conn || s.State != store.SessionAttached {
		return nil, leaseError(w, s, h).note("set_policy changes the workspace's stored default, a durable change; only the session's holder may make it while the session is open")
	}
	return &s, nil
}

// setPolicy is SetPolicy's job, in the workspace's queue.
func (e *Engine) setPolicy(ctx context.Context, h Holder, wsID string, pol policies.Policy) (store.Workspace, []string, error) {
	if ctx.Err() != nil {
		return store.Workspace{}, nil, ErrClosed
	}
	var held *store.Session
	if err := e.st.View(func(tx *store.Tx) error {
		w, err := tx.Workspace(wsID)
		if err != nil {
			return err
		}
		held, err = policyLeaseTx(tx, w, h)
		return err
	}); err != nil {
		return store.Workspace{}, nil, err
	}
	var notes []string
	applied := false
	if held != nil {
		switch ls := e.liveSession(held.ID); {
		case held.Override != nil:
			notes = append(notes, fmt.Sprintf("session %s has its own policy (%s, from open_session) and keeps it until it ends; the new default applies to sandboxes started afterwards", held.ID, held.Policy))
		case ls == nil: // recorded open but not live here: reconciliation ends it
		default:
			if err := ls.sb.SetPolicy(ctx, pol); err != nil {
				return store.Workspace{}, nil, errorf(ErrPolicy, "the live sandbox of session %s refused the policy: %v; nothing was changed", held.ID, err)
			}
			applied = true
		}
	}
	now := time.Now().UTC()
	var out store.Workspace
	err := e.st.Update(func(tx *store.Tx) error {
		cur, err := tx.Workspace(wsID)
		if err != nil {
			return err
		}
		cur.Policy = pol
		cur.Updated = now
		if out, err = tx.PutWorkspace(cur); err != nil {
			return err
		}
		if applied {
			s, err := tx.Session(held.ID)
			if err != nil {
				return err
			}
			s.Policy = describePolicy(pol)
			return tx.PutSession(s)
		}
		return nil
	})
	return out, notes, err
}

// policyCredentials lists where p's credentials come from, never their values.
func policyCredentials(p policies.Policy) []string {
	names := policies.CredentialNames(policies.Redact(p))
	if len(names) == 0 {
		return nil
	}
	return slices.Clone(names)
}
