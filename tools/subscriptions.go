package tools

import (
	"context"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Subscriptions (resources/subscribe): a connection subscribed to sandkit://workspaces/{workspace}
// (id or name, resolved when it subscribes) gets notifications/resources/updated with the URI it
// subscribed to each time that workspace's head moves (engine.WatchHeads). resources/unsubscribe
// and the connection's end stop them. Other URIs are accepted and never notified; a workspace
// that does not exist when subscribed to is never notified either (mcp-go v1.2.1 offers a
// subscribe hook no way to refuse). The 2026-07-28 protocol has no subscribe.

// subscription is one connection's subscription to one URI.
type subscription struct {
	srv     *server.MCPServer
	session string
	uri     string
}

// subscriptions tracks them by workspace id.
type subscriptions struct {
	eng  *engine.Engine
	mu   sync.Mutex
	byWS map[string]map[subscription]struct{}
}

// installSubscriptions adds the subscribe and unsubscribe hooks to h and watches e's heads (a nil
// e, in tests of the hooks alone, watches nothing). The caller's unregister hook calls drop.
func installSubscriptions(h *server.Hooks, e *engine.Engine) *subscriptions {
	s := &subscriptions{eng: e, byWS: map[string]map[subscription]struct{}{}}
	if e != nil {
		e.WatchHeads(s.headMoved)
	}
	h.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		s.subscribe(ctx, req.Params.URI)
	})
	h.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		s.unsubscribe(ctx, req.Params.URI)
	})
	return s
}

// subscribedWorkspace is the workspace reference of a subscribable URI, or "".
func subscribedWorkspace(uri string) string {
	ref, ok := strings.CutPrefix(uri, resourceWorkspaces+"/")
	if !ok || ref == "" || strings.Contains(ref, "/") {
		return ""
	}
	return ref
}

// who is the subscription of the request's connection to uri, if it can be notified.
func who(ctx context.Context, uri string) (subscription, bool) {
	srv, cs := server.ServerFromContext(ctx), server.ClientSessionFromContext(ctx)
	if srv == nil || cs == nil || cs.SessionID() == "" {
		return subscription{}, false
	}
	return subscription{srv: srv, session: cs.SessionID(), uri: uri}, true
}

func (s *subscriptions) subscribe(ctx context.Context, uri string) {
	ref := subscribedWorkspace(uri)
	sub, ok := who(ctx, uri)
	if ref == "" || !ok {
		return
	}
	w, err := s.eng.GetWorkspace(ctx, ref)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byWS[w.ID] == nil {
		s.byWS[w.ID] = map[subscription]struct{}{}
	}
	s.byWS[w.ID][sub] = struct{}{}
}

func (s *subscriptions) unsubscribe(ctx context.Context, uri string) {
	sub, ok := who(ctx, uri)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, subs := range s.byWS {
		delete(subs, sub)
		if len(subs) == 0 {
			delete(s.byWS, id)
		}
	}
}

// drop ends every subscription of a connection that has gone (of srv's, when known: the stdio
// transport names every connection "stdio").
func (s *subscriptions) drop(srv *server.MCPServer, session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, subs := range s.byWS {
		for sub := range subs {
			if sub.session == session && (srv == nil || sub.srv == srv) {
				delete(subs, sub)
			}
		}
		if len(subs) == 0 {
			delete(s.byWS, id)
		}
	}
}

// headMoved notifies the subscribers of wsID; the sends do not block (mcp-go drops a
// notification when a connection's queue is full).
func (s *subscriptions) headMoved(wsID string) {
	s.mu.Lock()
	subs := make([]subscription, 0, len(s.byWS[wsID]))
	for sub := range s.byWS[wsID] {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.srv.SendNotificationToSpecificClient(sub.session, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": sub.uri})
	}
}
