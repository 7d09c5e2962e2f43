package vercelfake

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// What the list endpoints share: the project filter, the sort order, the creation order of
// sessions and snapshots, and cursor pagination.

// checkListProject checks a list's optional ?project= against the configured project.
func (s *Server) checkListProject(q url.Values) error {
	if p := q.Get("project"); p != "" {
		return s.checkProject("project", p)
	}
	return nil
}

// listOrder checks a list's ?project= and reads its sortOrder (default desc).
func (s *Server) listOrder(q url.Values) (desc bool, err error) {
	if err := s.checkListProject(q); err != nil {
		return false, err
	}
	return sortOrder(q)
}

// sortOrder reads sortOrder (default desc).
func sortOrder(q url.Values) (desc bool, err error) {
	switch q.Get("sortOrder") {
	case "", "desc":
		return true, nil
	case "asc":
		return false, nil
	}
	return false, badRequest("`sortOrder` should be equal to one of the allowed values: asc, desc")
}

// created is what orders sessions and snapshots: their creation time, then their id.
type created interface {
	createdKey() (at int64, id string)
}

func (ss *session) createdKey() (int64, string)  { return ss.createdAt, ss.id }
func (sn *snapshot) createdKey() (int64, string) { return sn.createdAt, sn.id }

// sortByCreation sorts list oldest first, or newest first when desc.
func sortByCreation[T created](list []T, desc bool) {
	sort.Slice(list, func(i, j int) bool {
		at, id := list[i].createdKey()
		bt, bid := list[j].createdKey()
		if at != bt {
			return (at < bt) != desc
		}
		return (id < bid) != desc
	})
}

// listViews is the views of the items of all that keep admits, oldest first, or newest first
// when desc.
func listViews[T created, V any](all map[string]T, keep func(T) bool, desc bool, view func(T) V) []V {
	var list []T
	for _, it := range all {
		if keep(it) {
			list = append(list, it)
		}
	}
	sortByCreation(list, desc)
	views := make([]V, len(list))
	for i, it := range list {
		views[i] = view(it)
	}
	return views
}

// writePage answers one page of items (paginate) as {<key>: [...], pagination}.
func writePage[T any](w http.ResponseWriter, q url.Values, key string, items []T) {
	page, pag, err := paginate(items, q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{key: page, "pagination": pag})
}

// paginate cuts one page out of items: limit (1-100, default 50) items after the opaque cursor.
func paginate[T any](items []T, q url.Values) ([]T, wirePagination, error) {
	limit := 50
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			return nil, wirePagination{}, badRequest("`limit` should be an integer between 1 and 100")
		}
		limit = n
	}
	offset := 0
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		n, perr := strconv.Atoi(strings.TrimPrefix(string(raw), "o:"))
		if err != nil || perr != nil || !strings.HasPrefix(string(raw), "o:") || n < 0 {
			return nil, wirePagination{}, badRequest("`cursor` is not a cursor this API returned")
		}
		offset = n
	}
	if offset > len(items) {
		offset = len(items)
	}
	end := min(offset+limit, len(items))
	page := items[offset:end]
	if page == nil {
		page = []T{}
	}
	pag := wirePagination{Count: len(page)}
	if end < len(items) {
		next := base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(end)))
		pag.Next = &next
	}
	return page, pag, nil
}
