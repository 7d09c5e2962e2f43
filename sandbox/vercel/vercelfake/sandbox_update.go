package vercelfake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// PATCH /v2/sandboxes/{name} (§5.1): a change of a named sandbox's configuration, validated
// whole before any of it applies; new ports take effect at once on a running session.

// updateRequest is the body of PATCH /v2/sandboxes/{name}.
type updateRequest struct {
	Persistent         *bool              `json:"persistent"`
	Resources          *resourcesSpec     `json:"resources"`
	Timeout            *int64             `json:"timeout"`
	NetworkPolicy      json.RawMessage    `json:"networkPolicy"`
	NetworkID          json.RawMessage    `json:"networkId"`
	Tags               *map[string]string `json:"tags"`
	Ports              *[]int             `json:"ports"`
	SnapshotExpiration *int64             `json:"snapshotExpiration"`
	KeepLastSnapshots  json.RawMessage    `json:"keepLastSnapshots"`
	CurrentSnapshotID  *string            `json:"currentSnapshotId"`
	Region             *string            `json:"region"`
	FailoverRegions    *[]string          `json:"failoverRegions"`
	Mounts             json.RawMessage    `json:"mounts"`
	Env                *map[string]string `json:"env"`
	Runtime            *string            `json:"runtime"`
}

func (s *Server) handleUpdateSandbox(w http.ResponseWriter, r *http.Request) {
	sb, err := s.namedSandboxFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req updateRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	// Validate everything before changing anything.
	cfg := createRequest{Timeout: req.Timeout, Resources: req.Resources, NetworkPolicy: req.NetworkPolicy,
		SnapshotExpiration: req.SnapshotExpiration, Region: req.Region, Runtime: req.Runtime, Mounts: req.Mounts}
	if req.Tags != nil {
		cfg.Tags = *req.Tags
	}
	if req.FailoverRegions != nil {
		cfg.FailoverRegions = *req.FailoverRegions
	}
	if req.Env != nil {
		cfg.Env = *req.Env
	}
	var ports []int
	if req.Ports != nil {
		if ports, err = validatePorts(*req.Ports); err != nil {
			writeError(w, err)
			return
		}
	}
	var networkID *string
	if nid := bytes.TrimSpace(req.NetworkID); len(nid) > 0 {
		networkID = new(string)
		if string(nid) != "null" {
			if err := json.Unmarshal(nid, networkID); err != nil {
				writeError(w, badRequest("`networkId` should be string or null"))
				return
			}
		}
	}
	var keep *keepLast
	clearKeep := false
	if k := bytes.TrimSpace(req.KeepLastSnapshots); len(k) > 0 {
		if string(k) == "null" {
			clearKeep = true
		} else {
			keep = &keepLast{}
			if err := decodeJSON(k, keep, false); err != nil {
				writeError(w, prefixError(err, "keepLastSnapshots"))
				return
			}
			if err := validateKeepLast(keep); err != nil {
				writeError(w, err)
				return
			}
		}
	}

	unlock := s.lock(onSandboxes | onSessions | onSnapshots)
	scratch := sb.configCopy() // validation on a copy: a failure changes nothing
	if req.Region == nil && req.FailoverRegions != nil {
		cfg.Region = &scratch.region
	}
	if err := s.applyConfig(scratch, &cfg, true); err != nil {
		unlock()
		writeError(w, err)
		return
	}
	if req.CurrentSnapshotID != nil {
		sn := s.snapshots.all[*req.CurrentSnapshotID]
		if sn == nil || sn.projectID != sb.projectID {
			unlock()
			writeError(w, notFound("Snapshot %s not found.", *req.CurrentSnapshotID))
			return
		}
	}
	sb.timeout, sb.vcpus, sb.policy, sb.tags, sb.env = scratch.timeout, scratch.vcpus, scratch.policy, scratch.tags, scratch.env
	sb.snapExp, sb.region, sb.failover, sb.runtime = scratch.snapExp, scratch.region, scratch.failover, scratch.runtime
	if req.Persistent != nil {
		sb.persistent = *req.Persistent
	}
	if networkID != nil {
		sb.networkID = *networkID
	}
	if keep != nil {
		sb.keepLast = keep
	}
	if clearKeep {
		sb.keepLast = nil
	}
	if req.CurrentSnapshotID != nil {
		sb.currentSnapshotID = *req.CurrentSnapshotID
	}
	sb.updatedAt = ms(time.Now())
	var opened []int
	var closing []*routeListener
	cur := sb.current
	if req.Ports != nil {
		sb.ports = ports
		for _, p := range ports {
			if sb.subdomains[p] == "" {
				sb.subdomains[p] = newSubdomain()
			}
		}
		// Ports take effect at once on a running session.
		if cur != nil && cur.status == statusRunning {
			want := map[int]bool{}
			for _, p := range ports {
				want[p] = true
				if cur.listeners[p] == nil {
					opened = append(opened, p)
				}
			}
			for p, l := range cur.listeners {
				if !want[p] {
					closing = append(closing, l)
					delete(cur.listeners, p)
				}
			}
			cur.ports = ports
			for _, p := range ports {
				cur.subdomains[p] = sb.subdomains[p]
			}
		}
	}
	unlock()
	for _, l := range closing {
		l.close()
	}
	for _, p := range opened {
		l, err := openRoute(cur, cur.backend, p, s.log)
		if err != nil {
			writeError(w, internalError(err))
			return
		}
		s.sessions.mu.Lock()
		if cur.status == statusRunning && cur.listeners != nil {
			cur.listeners[p] = l
			l = nil
		}
		s.sessions.mu.Unlock()
		if l != nil {
			l.close()
		}
	}
	unlock = s.lock(onSandboxes | onSessions)
	out := map[string]any{"sandbox": sb.view()}
	if req.Ports != nil {
		routes := []wireRoute{}
		if cur != nil {
			routes = cur.routes()
		}
		out["routes"] = routes
	}
	unlock()
	writeJSON(w, http.StatusOK, out)
}
