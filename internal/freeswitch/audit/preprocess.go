package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Limits bound the work one audit may do on a hostile tree.
const (
	maxFileSize  = 8 << 20  // bytes in one file
	maxTotal     = 64 << 20 // bytes read over the whole tree
	maxFiles     = 5000     // files read (one file read twice counts twice)
	maxGlob      = 1000     // files one include may match
	maxDepth     = 100      // include nesting, FreeSWITCH's own limit (rlevel > 100)
	maxLineBytes = 64 << 10 // one line
)

// Line is one line of the preprocessed document and where it came from.
type Line struct {
	Text string
	File string // relative to the audited directory
	No   int    // 1-based line in File
}

// Var is a preprocessor variable and where it was last set.
type Var struct {
	Value string
	File  string
	Line  int
	// InComment: the command sat inside an ordinary <!-- --> comment on its
	// line, which does not stop FreeSWITCH from running it.
	InComment bool
}

// Doc is a preprocessed configuration: the lines FreeSWITCH would hand to
// its XML parser, and the variables set on the way.
type Doc struct {
	Lines []Line
	Vars  map[string]Var
	// Files lists the files read, relative to the root.
	Files []string
}

// preprocessor reads a tree as FreeSWITCH's src/switch_xml.c preprocess()
// does: line by line; each line has $${var} expanded with the variables
// set so far (an unset variable expands to nothing); a line holding
// "<X-PRE-PROCESS" (any case) is a command and is consumed, even inside an
// ordinary <!-- --> comment, which the preprocessor does not track; a line
// where "x-pre-process" follows anything but "<" (XX-PRE-PROCESS, the way
// vanilla disables one) is dropped; lines holding <include>, </include> or
// "<?" are dropped; only "<!--#" comments hide a command. The include
// command globs relative to the directory of the file that holds it
// (preprocess_glob()).
type preprocessor struct {
	root  string // resolved absolute root
	doc   *Doc
	stack []string
	total int64
	out   int // bytes of preprocessed output
	// inComment is set for the command being run (see Var.InComment).
	inComment bool
}

// Preprocess reads the tree under dir starting at entry (relative to dir).
// Hostile input (include loops, huge globs or files, symlinks out of dir)
// returns an error naming the file and line.
func Preprocess(dir, entry string, seed map[string]string) (*Doc, error) {
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	p := &preprocessor{root: root, doc: &Doc{Vars: map[string]Var{}}}
	for k, v := range seed {
		p.doc.Vars[k] = Var{Value: v}
	}
	if err := p.file(root, filepath.Join(root, entry), "", 0); err != nil {
		return nil, err
	}
	return p.doc, nil
}

// PreprocessBytes runs the preprocessor over data as if it were the file
// name at the top of dir (used by the fuzzer and by a synthesised root).
func PreprocessBytes(dir, name string, data []byte, seed map[string]string) (*Doc, error) {
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	p := &preprocessor{root: root, doc: &Doc{Vars: map[string]Var{}}}
	for k, v := range seed {
		p.doc.Vars[k] = Var{Value: v}
	}
	if err := p.lines(root, name, data, 0); err != nil {
		return nil, err
	}
	return p.doc, nil
}

func (p *preprocessor) rel(path string) string {
	if r, err := filepath.Rel(p.root, path); err == nil {
		return filepath.ToSlash(r)
	}
	return path
}

// file reads one file (absolute path) found from the directory cwd.
func (p *preprocessor) file(cwd, path, from string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: includes nested deeper than %d", from, maxDepth)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%s: including %s: %w", from, p.rel(path), err)
	}
	if real != p.root && !strings.HasPrefix(real, p.root+string(filepath.Separator)) {
		return fmt.Errorf("%s: %s resolves to %s, outside the audited directory; audit the directory it lives in, or copy it in", orTop(from), p.rel(path), real)
	}
	name := p.rel(real)
	for _, s := range p.stack {
		if s == name {
			return fmt.Errorf("%s: include loop: %s", from, strings.Join(append(p.stack, name), " → "))
		}
	}
	if len(p.doc.Files) >= maxFiles {
		return fmt.Errorf("%s: more than %d files included", from, maxFiles)
	}
	st, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%s: %w", orTop(from), err)
	}
	if st.IsDir() {
		return nil // glob matched a directory; FreeSWITCH's open() of it yields nothing
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %s is not a regular file", orTop(from), name)
	}
	if st.Size() > maxFileSize {
		return fmt.Errorf("%s: %s is %d bytes, over the %d MiB limit for one configuration file", orTop(from), name, st.Size(), maxFileSize>>20)
	}
	if p.total += st.Size(); p.total > maxTotal {
		return fmt.Errorf("%s: the included files exceed %d MiB in total", orTop(from), maxTotal>>20)
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return fmt.Errorf("%s: %w", orTop(from), err)
	}
	p.doc.Files = append(p.doc.Files, name)
	p.stack = append(p.stack, name)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	return p.lines(filepath.Dir(real), name, data, depth)
}

func orTop(from string) string {
	if from == "" {
		return "audit"
	}
	return from
}

// lines preprocesses data, the content of file name, whose includes are
// relative to cwd.
func (p *preprocessor) lines(cwd, name string, data []byte, depth int) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	inHash := false // inside a multi-line <!--# comment
	for no := 1; sc.Scan(); no++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		at := fmt.Sprintf("%s:%d", name, no)
		bp := expand(line, p.doc.Vars)
		if strings.Contains(bp, "<include>") || strings.Contains(bp, "</include>") || strings.Contains(bp, "<?") {
			continue
		}
		if inHash {
			e := strings.Index(bp, "-->")
			if e < 0 {
				continue
			}
			inHash = false
			bp = bp[e+3:]
		}
		if i := indexFold(bp, "x-pre-process"); i >= 0 {
			if i == 0 || bp[i-1] != '<' {
				continue
			}
			cmd, arg, ok := parseCommand(bp[i:])
			if !ok {
				continue
			}
			p.inComment = strings.Contains(bp[:i], "<!--")
			if err := p.command(cwd, at, name, no, cmd, arg, depth); err != nil {
				return err
			}
			continue
		}
		if c := strings.Index(bp, "<!--#"); c >= 0 {
			// A "<!--#cmd arg-->" comment: the text around it stays.
			rest := bp[c+5:]
			keep := bp[:c]
			if e := strings.Index(rest, "-->"); e >= 0 {
				keep += rest[e+3:]
				rest = rest[:e]
			} else {
				inHash = true
			}
			if err := p.emit(Line{Text: keep, File: name, No: no}); err != nil {
				return err
			}
			cmd, arg, _ := strings.Cut(rest, " ")
			if q := strings.IndexByte(arg, '"'); q >= 0 {
				if qq := strings.IndexByte(arg[q+1:], '"'); qq >= 0 {
					arg = arg[q+1 : q+1+qq]
				}
			}
			if arg != "" {
				p.inComment = false
				if err := p.command(cwd, at, name, no, cmd, arg, depth); err != nil {
					return err
				}
			}
			continue
		}
		if err := p.emit(Line{Text: bp, File: name, No: no}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s: a line longer than %d KiB", name, maxLineBytes>>10)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// emit appends one output line, bounding the document's size ($${var}
// expansion can multiply it).
func (p *preprocessor) emit(l Line) error {
	if p.out += len(l.Text) + 1; p.out > maxTotal {
		return fmt.Errorf("%s:%d: the preprocessed configuration exceeds %d MiB", l.File, l.No, maxTotal>>20)
	}
	p.doc.Lines = append(p.doc.Lines, l)
	return nil
}

// command runs one preprocessor command found at file:no.
func (p *preprocessor) command(cwd, at, file string, no int, cmd, arg string, depth int) error {
	switch strings.ToLower(cmd) {
	case "set", "stun-set", "env-set", "exec-set":
		// set trims spaces around name and value; the *-set forms are
		// resolved by FreeSWITCH at run time, the raw value is kept.
		name, val, ok := strings.Cut(arg, "=")
		if !ok {
			return nil
		}
		name, val = strings.TrimRight(name, " "), strings.TrimLeft(val, " ")
		v := Var{Value: val, File: file, Line: no, InComment: p.inComment}
		p.doc.Vars[name] = v
	case "include":
		pattern := arg
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(cwd, pattern)
		}
		pattern = filepath.Clean(pattern)
		// Refuse before globbing anything outside the tree: a pattern like
		// /*/*/* would otherwise walk the whole file system.
		if base := staticPrefix(pattern); base != p.root && !strings.HasPrefix(base, p.root+string(filepath.Separator)) {
			return fmt.Errorf("%s: include %q points outside the audited directory; audit the directory it lives in, or copy it in", at, arg)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("%s: include %q: %w", at, arg, err)
		}
		if len(matches) > maxGlob {
			return fmt.Errorf("%s: include %q matches %d files, over the limit of %d", at, arg, len(matches), maxGlob)
		}
		for _, m := range matches {
			if err := p.file(filepath.Dir(m), m, at, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// staticPrefix returns the leading path components of pattern that hold no
// glob characters.
func staticPrefix(pattern string) string {
	dir := pattern
	for strings.ContainsAny(dir, "*?[\\") {
		dir = filepath.Dir(dir)
	}
	return dir
}

// parseCommand reads cmd="..." and data="..." after "X-PRE-PROCESS" the way
// preprocess() does: the first "cmd", then "=", then a double quote; then
// "data" after the command's closing quote.
func parseCommand(s string) (cmd, arg string, ok bool) {
	rest := s
	for _, tok := range []string{"cmd", "=", `"`} {
		i := indexFold(rest, tok)
		if i < 0 {
			return "", "", false
		}
		rest = rest[i+len(tok):]
	}
	e := strings.IndexByte(rest, '"')
	if e < 0 {
		cmd, rest = rest, ""
	} else {
		cmd, rest = rest[:e], rest[e+1:]
	}
	for _, tok := range []string{"data", "=", `"`} {
		i := indexFold(rest, tok)
		if i < 0 {
			return "", "", false
		}
		rest = rest[i+len(tok):]
	}
	if e := strings.IndexByte(rest, '"'); e >= 0 {
		rest = rest[:e]
	}
	return cmd, rest, true
}

// expand replaces $${name} with the variable's value, or nothing when it is
// unset, as expand_vars() does; an unclosed "$${" is kept as it is.
func expand(s string, vars map[string]Var) string {
	if !strings.Contains(s, "$${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "$${")
		if i < 0 {
			break
		}
		e := strings.IndexByte(s[i:], '}')
		if e < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(vars[s[i+3:i+e]].Value)
		s = s[i+e+1:]
		if b.Len() > maxLineBytes {
			break
		}
	}
	b.WriteString(s)
	return b.String()
}

// indexFold is strings.Index ignoring ASCII case (switch_stristr).
func indexFold(s, sub string) int {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return i
		}
	}
	return -1
}
