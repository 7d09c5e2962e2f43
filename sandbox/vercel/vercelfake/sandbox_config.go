package vercelfake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The configuration of a named sandbox: the bodies of create, fork and PATCH, and their
// validation (the API's own messages where they are known).

type sourceSpec struct {
	Type       string  `json:"type"`
	SnapshotID *string `json:"snapshotId,omitempty"`
	URL        *string `json:"url,omitempty"`
	Depth      *int    `json:"depth,omitempty"`
	Revision   *string `json:"revision,omitempty"`
	Username   *string `json:"username,omitempty"`
	Password   *string `json:"password,omitempty"`
}

type resourcesSpec struct {
	VCPUs  *int `json:"vcpus,omitempty"`
	Memory *int `json:"memory,omitempty"`
}

// createRequest is the body of POST /v2|v3/sandboxes and (without projectId, source and
// runtime) of POST /v2/sandboxes/{name}/fork.
type createRequest struct {
	ProjectID          *string           `json:"projectId"`
	Name               *string           `json:"name"`
	Ports              []int             `json:"ports"`
	Source             *sourceSpec       `json:"source"`
	Timeout            *int64            `json:"timeout"`
	Resources          *resourcesSpec    `json:"resources"`
	Runtime            *string           `json:"runtime"`
	Image              *string           `json:"image"`
	Persistent         *bool             `json:"persistent"`
	NetworkPolicy      json.RawMessage   `json:"networkPolicy"`
	NetworkID          *string           `json:"networkId"`
	Env                map[string]string `json:"env"`
	Tags               map[string]string `json:"tags"`
	SnapshotExpiration *int64            `json:"snapshotExpiration"`
	KeepLastSnapshots  *keepLast         `json:"keepLastSnapshots"`
	Mounts             json.RawMessage   `json:"mounts"`
	Region             *string           `json:"region"`
	FailoverRegions    []string          `json:"failoverRegions"`
}

var runtimes = map[string]bool{"node22": true, "node24": true, "node26": true, "python3.13": true}

// validateTimeout checks a session timeout in ms.
func (s *Server) validateTimeout(t int64, field string) error {
	if t <= 0 {
		return badRequest("`%s` should be >= 1", field)
	}
	if max := s.opts.MaxTimeout.Milliseconds(); t > max {
		return &apiError{Status: http.StatusBadRequest, Code: codeTimeoutInvalid,
			Message: fmt.Sprintf("Invalid request: `%s` must be at most %d ms (the plan's maximum sandbox duration is %s).", field, max, s.opts.MaxTimeout)}
	}
	return nil
}

func validateVCPUs(v int) error {
	if v < 1 || (v != 1 && v%2 != 0) || v > maxVCPUs {
		return badRequest("`resources.vcpus` must be 1 or an even number up to %d, got %d", maxVCPUs, v)
	}
	return nil
}

func validatePorts(ports []int) ([]int, error) {
	if len(ports) > maxPorts {
		return nil, badRequest("`ports` should NOT have more than %d items", maxPorts)
	}
	for i, p := range ports {
		if p < 1024 || p > 65535 {
			return nil, badRequest("`ports[%d]` should be >= 1024 and <= 65535, got %d", i, p)
		}
	}
	return sortedPorts(ports), nil
}

func validateTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return badRequest("`tags` should NOT have more than %d properties", maxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > 256 || len(v) > 256 || strings.ContainsAny(k, ":,") {
			return badRequest("`tags` has an invalid tag %q (keys are 1-256 characters without ':' or ',', values at most 256)", k)
		}
	}
	return nil
}

func validateSnapshotExpiration(v int64, field string) error {
	if v != 0 && (v < minSnapshotTTL.Milliseconds()) {
		return badRequest("`%s` must be 0 (never expire) or at least %d ms (1 day)", field, minSnapshotTTL.Milliseconds())
	}
	return nil
}

func validateKeepLast(k *keepLast) error {
	if k == nil {
		return nil
	}
	if k.Count < 1 || k.Count > 10 {
		return badRequest("`keepLastSnapshots.count` should be >= 1 and <= 10")
	}
	if k.Expiration != nil {
		return validateSnapshotExpiration(*k.Expiration, "keepLastSnapshots.expiration")
	}
	return nil
}

func validateRegions(region *string, failover []string) (string, []string, error) {
	r := defaultRegion
	if region != nil {
		if !regions[*region] {
			return "", nil, badRequest("`region` %q is not a sandbox region", *region)
		}
		r = *region
	}
	out := []string{}
	for _, f := range failover {
		if !regions[f] {
			return "", nil, badRequest("`failoverRegions` holds %q, which is not a sandbox region", f)
		}
		if f == r {
			return "", nil, badRequest("failoverRegions must not include the sandbox region: %s", r)
		}
		out = append(out, f)
	}
	return r, out, nil
}

// imageRef is the digest-pinned image reference the service reports for an image name.
func imageRef(image string) string {
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		return image
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	sum := sha256.Sum256([]byte(image))
	return repo + "@sha256:" + hex.EncodeToString(sum[:])
}

// configCopy copies the configuration of sb (not its identity, sessions or history).
func (sb *namedSandbox) configCopy() *namedSandbox {
	return &namedSandbox{
		projectID: sb.projectID, persistent: sb.persistent, region: sb.region,
		failover: append([]string{}, sb.failover...), vcpus: sb.vcpus, runtime: sb.runtime, image: sb.image,
		timeout: sb.timeout, policy: sb.policy, networkID: sb.networkID, env: sb.env, tags: sb.tags,
		ports: append([]int{}, sb.ports...), snapExp: sb.snapExp, keepLast: sb.keepLast,
	}
}

// applyConfig validates the configuration fields of a create or fork body onto sb (a fresh
// sandbox, or a copy of the fork source).
func (s *Server) applyConfig(sb *namedSandbox, req *createRequest, v3 bool) error {
	if req.Name != nil {
		if !nameRe.MatchString(*req.Name) {
			return badRequest("`name` must be 1-128 characters of letters, digits, '-' and '_'")
		}
		sb.name = *req.Name
	}
	if req.Ports != nil {
		ports, err := validatePorts(req.Ports)
		if err != nil {
			return err
		}
		sb.ports = ports
	}
	if req.Timeout != nil {
		if err := s.validateTimeout(*req.Timeout, "timeout"); err != nil {
			return err
		}
		sb.timeout = *req.Timeout
	}
	if req.Resources != nil {
		if req.Resources.VCPUs != nil {
			if err := validateVCPUs(*req.Resources.VCPUs); err != nil {
				return err
			}
			sb.vcpus = *req.Resources.VCPUs
		}
		if req.Resources.Memory != nil && *req.Resources.Memory != sb.vcpus*memoryPerVCPU {
			return badRequest("`resources.memory` must be %d (2048 MB per vCPU) for %d vCPUs", sb.vcpus*memoryPerVCPU, sb.vcpus)
		}
	}
	if req.Runtime != nil {
		if !runtimes[*req.Runtime] {
			return badRequest("`runtime` should be equal to one of the allowed values: node22, node24, node26, python3.13")
		}
		sb.runtime, sb.image = *req.Runtime, ""
	}
	if req.Image != nil {
		if !v3 {
			return badRequest("should NOT have additional property `image` (images are created through /v3/sandboxes)")
		}
		if strings.TrimSpace(*req.Image) == "" {
			return badRequest("`image` must not be empty")
		}
		sb.image, sb.runtime = imageRef(*req.Image), ""
	}
	if req.Persistent != nil {
		sb.persistent = *req.Persistent
	}
	if len(bytes.TrimSpace(req.NetworkPolicy)) > 0 && string(bytes.TrimSpace(req.NetworkPolicy)) != "null" {
		if err := s.refusePolicyShape(req.NetworkPolicy, "networkPolicy"); err != nil {
			return err
		}
		p, err := parsePolicy(req.NetworkPolicy, "networkPolicy")
		if err != nil {
			return err
		}
		if _, err := p.backendPolicy(); err != nil {
			return err
		}
		sb.policy = p
	}
	if req.NetworkID != nil {
		sb.networkID = *req.NetworkID
	}
	if req.Env != nil {
		for k := range req.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return badRequest("`env` has an invalid variable name %q", k)
			}
		}
		sb.env = req.Env
	}
	if req.Tags != nil {
		if err := validateTags(req.Tags); err != nil {
			return err
		}
		sb.tags = req.Tags
	}
	if req.SnapshotExpiration != nil {
		if err := validateSnapshotExpiration(*req.SnapshotExpiration, "snapshotExpiration"); err != nil {
			return err
		}
		v := *req.SnapshotExpiration
		sb.snapExp = &v
	}
	if req.KeepLastSnapshots != nil {
		if err := validateKeepLast(req.KeepLastSnapshots); err != nil {
			return err
		}
		k := *req.KeepLastSnapshots
		sb.keepLast = &k
	}
	if m := bytes.TrimSpace(req.Mounts); len(m) > 0 && string(m) != "null" && string(m) != "{}" {
		return badRequest("`mounts`: drives are not supported by the fake Sandbox API")
	}
	if req.Region != nil || req.FailoverRegions != nil {
		region := &sb.region
		if req.Region != nil {
			region = req.Region
		}
		r, f, err := validateRegions(region, req.FailoverRegions)
		if err != nil {
			return err
		}
		sb.region, sb.failover = r, f
	}
	return nil
}
