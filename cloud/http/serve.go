package http

import (
	"context"
	"net/http"

	"varco.dev/cloud"
)

// Helpers for the shapes most handlers share. Each writes the response, or
// the first error with fail.

// serveGet serves GET …/{id}: the entity find returns for the id, with its
// version as ETag.
func serveGet[T cloud.Versioned](s *Server, w http.ResponseWriter, r *http.Request, find func(context.Context, int64) (T, error)) {
	serveByID(s, w, r, find, func(v T) { writeVersioned(w, http.StatusOK, v.RowVersion(), v) })
}

// serveByID serves a request on the entity {id} that call answers:
// write writes call's result, fail its error.
func serveByID[T any](s *Server, w http.ResponseWriter, r *http.Request, call func(context.Context, int64) (T, error), write func(T)) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := call(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	write(v)
}

// serveListOf serves GET …/{id}/things: every item list returns for the id,
// as one page.
func serveListOf[T any](s *Server, w http.ResponseWriter, r *http.Request, list func(context.Context, int64) ([]T, error)) {
	serveByID(s, w, r, list, func(items []T) { writeJSON(w, http.StatusOK, page[T]{Items: items}) })
}

// serveList serves GET /things: every item list returns, as one page.
func serveList[T any](s *Server, w http.ResponseWriter, r *http.Request, list func(context.Context) ([]T, error)) {
	items, err := list(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page[T]{Items: items})
}

// serveCursorPage serves GET /things?cursor=&limit=: a page of at most
// limit items after the id cursor (newest first), with the next cursor.
// A list with more parameters reads them in find (with query, so an invalid
// one fails the request after cursor and limit were found valid).
func serveCursorPage[T any](s *Server, w http.ResponseWriter, r *http.Request,
	find func(ctx context.Context, cursor int64, limit int) ([]T, error), id func(T) int64) {
	q := query{r: r}
	limit := q.limit(50, 500)
	cursor := q.int64("cursor")
	if q.err != nil {
		s.fail(w, r, q.err)
		return
	}
	items, err := find(r.Context(), cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(items, limit, id))
}

// serveFound serves GET …/{id} of an entity without a version.
func serveFound[T any](s *Server, w http.ResponseWriter, r *http.Request, find func(context.Context, int64) (T, error)) {
	serveByID(s, w, r, find, func(v T) { writeJSON(w, http.StatusOK, v) })
}

// serveDecoded serves a request that its JSON body says all of: once the
// body is decoded into req, call answers, and its result is written with
// status.
func serveDecoded[T any](s *Server, w http.ResponseWriter, r *http.Request, req any, status int, call func(context.Context) (T, error)) {
	if err := decode(w, r, req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := call(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

// serveCreate serves POST /things. req is the body; once it is decoded,
// create makes the entity from it and stores it. The entity is written 201
// with its version as ETag and, when location is not nil, the Location
// location gives it.
func serveCreate[T cloud.Versioned](s *Server, w http.ResponseWriter, r *http.Request, req any,
	create func(context.Context) (T, error), location func(T) string) {
	if err := decode(w, r, req); err != nil {
		s.fail(w, r, err)
		return
	}
	x, err := create(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if location != nil {
		w.Header().Set("Location", location(x))
	}
	writeVersioned(w, http.StatusCreated, x.RowVersion(), x)
}

// serveCreateOf serves POST …/{id}/things: serveCreate for a thing of the
// entity id (a member's credential, say). The id is read before the body.
func serveCreateOf[T cloud.Versioned](s *Server, w http.ResponseWriter, r *http.Request, req any,
	create func(ctx context.Context, id int64) (T, error), location func(T) string) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	serveCreate(s, w, r, req, func(ctx context.Context) (T, error) { return create(ctx, id) }, location)
}

// serveUpdate serves PATCH …/{id}. req is the body: the domain's update type
// embedded, with an optional "version" at *bodyVersion (see editRequest).
// apply makes the edit once req is decoded; the edited entity is written
// with its version as ETag.
func serveUpdate[T cloud.Versioned](s *Server, w http.ResponseWriter, r *http.Request, req any, bodyVersion **int,
	apply func(ctx context.Context, id int64, version int) (T, error)) {
	serveEdit(s, w, r, func() (int64, int, error) { return s.editRequest(w, r, req, bodyVersion) }, apply)
}

// serveArchive serves POST …/{id}/archive: the version comes from
// If-Match or an optional {"version": n} body.
func serveArchive[T cloud.Versioned](s *Server, w http.ResponseWriter, r *http.Request,
	archive func(ctx context.Context, id int64, version int) (T, error)) {
	serveEdit(s, w, r, func() (int64, int, error) {
		var req struct {
			Version *int `json:"version"`
		}
		id, err := pathID(r, "id")
		if err != nil {
			return 0, 0, err
		}
		if r.ContentLength != 0 {
			if err := decode(w, r, &req); err != nil {
				return 0, 0, err
			}
		}
		v, err := version(r, req.Version)
		return id, v, err
	}, archive)
}

// serveEdit serves an optimistic edit of one entity, the shape serveUpdate
// and serveArchive share: read parses the request into the entity's id and
// the version the client read, apply makes the edit, and the edited entity
// is written with its new version as ETag.
func serveEdit[T cloud.Versioned](s *Server, w http.ResponseWriter, r *http.Request, read func() (id int64, version int, err error),
	apply func(ctx context.Context, id int64, version int) (T, error)) {
	id, v, err := read()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	x, err := apply(r.Context(), id, v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, x.RowVersion(), x)
}

// query reads a request's query parameters, keeping the first error: once
// one parameter is invalid the others read as zero.
type query struct {
	r   *http.Request
	err error
}

// int64 reads an optional non-negative integer (see queryInt64).
func (q *query) int64(name string) int64 {
	if q.err != nil {
		return 0
	}
	var v int64
	v, q.err = queryInt64(q.r, name)
	return v
}

// limit reads "limit" in [1, max], default def (see queryLimit).
func (q *query) limit(def, max int) int {
	if q.err != nil {
		return 0
	}
	var v int
	v, q.err = queryLimit(q.r, def, max)
	return v
}

// bool reads an optional boolean, "true" or "false"; absent is false.
func (q *query) bool(name string) bool {
	v := q.optionalBool(name)
	return v != nil && *v
}

// optionalBool reads an optional boolean, "true" or "false"; absent is nil,
// for a filter that then leaves it out.
func (q *query) optionalBool(name string) *bool {
	if q.err != nil {
		return nil
	}
	switch q.r.URL.Query().Get(name) {
	case "":
		return nil
	case "true":
		return new(true)
	case "false":
		return new(false)
	}
	q.err = cloud.Invalid(name, "Must be true or false.")
	return nil
}

// date reads an optional date YYYY-MM-DD (see queryDate).
func (q *query) date(name string) cloud.Date {
	if q.err != nil {
		return cloud.Date{}
	}
	var d cloud.Date
	d, q.err = queryDate(q.r, name)
	return d
}
