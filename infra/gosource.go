package infra

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// flagSpec is one command-line flag found in Go source.
type flagSpec struct {
	Name string
	Kind string // string, int, bool, float, duration or value (a flag.Value)
	Pos  string // file:line of the registration
}

// commandSpec is one sslight sub-command: its name and the flags its run
// function (and the package functions it calls) register.
type commandSpec struct {
	Name  string
	Flags map[string]flagSpec
	Pos   string
}

// flagMethods maps the flag package's registration methods (on *FlagSet or
// the package itself) to the kind of value and the index of the name argument.
var flagMethods = map[string]struct {
	kind    string
	nameArg int
}{
	"String": {"string", 0}, "StringVar": {"string", 1},
	"Int": {"int", 0}, "IntVar": {"int", 1},
	"Int64": {"int", 0}, "Int64Var": {"int", 1},
	"Uint": {"int", 0}, "UintVar": {"int", 1},
	"Uint64": {"int", 0}, "Uint64Var": {"int", 1},
	"Bool": {"bool", 0}, "BoolVar": {"bool", 1}, "BoolFunc": {"bool", 0},
	"Float64": {"float", 0}, "Float64Var": {"float", 1},
	"Duration": {"duration", 0}, "DurationVar": {"duration", 1},
	"Var": {"value", 1}, "TextVar": {"value", 1}, "Func": {"value", 0},
}

// flagCall reports the flag a call expression registers, if it is a call of
// a flag registration method with a literal name (fs.String("out", ...),
// flag.BoolVar(&x, "once", ...)).
func flagCall(fset *token.FileSet, call *ast.CallExpr) (flagSpec, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return flagSpec{}, false
	}
	m, ok := flagMethods[sel.Sel.Name]
	// Every registration method takes a name, a default or target, and a
	// usage string: fewer arguments is some other method of the same name.
	if !ok || len(call.Args) < 3 || len(call.Args) <= m.nameArg {
		return flagSpec{}, false
	}
	lit, ok := call.Args[m.nameArg].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return flagSpec{}, false
	}
	name, err := strconv.Unquote(lit.Value)
	if err != nil || name == "" {
		return flagSpec{}, false
	}
	return flagSpec{Name: name, Kind: m.kind, Pos: fset.Position(call.Pos()).String()}, true
}

// parseGoDir parses the non-test Go files of dir.
func parseGoDir(dir string) (*token.FileSet, []*ast.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read Go sources: %w", err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, fmt.Errorf("parse Go source: %w", err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("read Go sources: no .go file in %s", dir)
	}
	return fset, files, nil
}

// scanFlags returns every flag registered anywhere in the non-test Go files
// of dir, for packages that register flags at package level (Beam's options).
func scanFlags(dir string) (map[string]flagSpec, error) {
	fset, files, err := parseGoDir(dir)
	if err != nil {
		return nil, err
	}
	flags := map[string]flagSpec{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if fl, ok := flagCall(fset, call); ok {
					flags[fl.Name] = fl
				}
			}
			return true
		})
	}
	return flags, nil
}

// scanCommands reads the sub-commands of the sslight binary from the Go
// source in dir (cmd/sslight): every register(&command{name: "...", run: f})
// call, and the flags registered by f and by the package-level functions f
// calls, transitively. Flags added by methods (the Beam options that
// flagSet.parse adds to pipeline sub-commands) are not followed.
func scanCommands(dir string) (map[string]*commandSpec, error) {
	fset, files, err := parseGoDir(dir)
	if err != nil {
		return nil, err
	}
	funcs := map[string]*ast.FuncDecl{}
	for _, f := range files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Body != nil {
				funcs[fd.Name.Name] = fd
			}
		}
	}
	cmds := map[string]*commandSpec{}
	for _, f := range files {
		var err error
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || err != nil {
				return err == nil
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "register" || len(call.Args) != 1 {
				return true
			}
			name, body, ok := registeredCommand(call.Args[0], funcs)
			if !ok {
				return true
			}
			if _, dup := cmds[name]; dup {
				err = fmt.Errorf("%s: sub-command %q registered twice", fset.Position(call.Pos()), name)
				return false
			}
			c := &commandSpec{Name: name, Flags: map[string]flagSpec{}, Pos: fset.Position(call.Pos()).String()}
			collectFlags(fset, body, funcs, map[string]bool{}, c.Flags)
			cmds[name] = c
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return cmds, nil
}

// registeredCommand reads the name and the run function's body out of the
// argument of register: &command{name: "x", run: runX} or run: func(...){...}.
func registeredCommand(arg ast.Expr, funcs map[string]*ast.FuncDecl) (string, ast.Node, bool) {
	if u, ok := arg.(*ast.UnaryExpr); ok && u.Op == token.AND {
		arg = u.X
	}
	lit, ok := arg.(*ast.CompositeLit)
	if !ok {
		return "", nil, false
	}
	var name string
	var body ast.Node
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok {
			continue
		}
		switch key.Name {
		case "name":
			if bl, ok := kv.Value.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				name, _ = strconv.Unquote(bl.Value)
			}
		case "run":
			switch v := kv.Value.(type) {
			case *ast.Ident:
				if fd := funcs[v.Name]; fd != nil {
					body = fd.Body
				}
			case *ast.FuncLit:
				body = v.Body
			}
		}
	}
	return name, body, name != "" && body != nil
}

// collectFlags adds the flags registered in body, and in the package
// functions it calls, to out.
func collectFlags(fset *token.FileSet, body ast.Node, funcs map[string]*ast.FuncDecl, seen map[string]bool, out map[string]flagSpec) {
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if fl, ok := flagCall(fset, call); ok {
			out[fl.Name] = fl
		}
		if id, ok := call.Fun.(*ast.Ident); ok && !seen[id.Name] {
			if fd := funcs[id.Name]; fd != nil {
				seen[id.Name] = true
				collectFlags(fset, fd.Body, funcs, seen, out)
			}
		}
		return true
	})
}

// flagNames returns the sorted names of flags.
func flagNames(flags map[string]flagSpec) []string {
	names := make([]string, 0, len(flags))
	for n := range flags {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
