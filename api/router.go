package api

import (
	"net/http"
	"slices"
	"strings"
)

// route is one method and path of the API.
type route struct {
	method  string       // "GET", "POST", ...
	pattern string       // a net/http path pattern, e.g. "/v1/status"
	handler http.Handler // mutating routes come wrapped in requireToken
}

// newRouter serves routes and answers everything else with a JSON error: 405
// with an Allow header for a known path with another method, 404 for an
// unknown path.
func newRouter(routes []route) http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	var patterns []string
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.pattern, rt.handler)
		if _, ok := allowed[rt.pattern]; !ok {
			patterns = append(patterns, rt.pattern)
		}
		allowed[rt.pattern] = append(allowed[rt.pattern], rt.method)
		if rt.method == http.MethodGet {
			// A GET pattern also serves HEAD.
			allowed[rt.pattern] = append(allowed[rt.pattern], http.MethodHead)
		}
	}
	for _, p := range patterns {
		methods := allowed[p]
		slices.Sort(methods)
		mux.Handle(p, methodNotAllowed(slices.Compact(methods)))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: %s %q", r.Method, r.URL.Path)
	})
	return mux
}

// methodNotAllowed answers 405 and lists the methods the path serves.
func methodNotAllowed(methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method %s is not allowed on %q; allowed: %s", r.Method, r.URL.Path, allow)
	})
}
