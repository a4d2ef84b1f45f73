package audit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxNodes bounds the elements of one parsed document, maxNesting their
// depth (the checks walk the tree recursively).
const (
	maxNodes   = 2_000_000
	maxNesting = 1000
)

// Node is one XML element of the preprocessed document, with the file and
// line it came from.
type Node struct {
	Name     string
	Attrs    []xml.Attr
	Children []*Node
	Parent   *Node
	File     string
	Line     int
}

// Attr returns the attribute name (exact case, as switch_xml_attr does), or "".
func (n *Node) Attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// HasAttr reports whether the attribute is present.
func (n *Node) HasAttr(name string) bool {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return true
		}
	}
	return false
}

// Child returns the first child element called name (switch_xml_child).
func (n *Node) Child(name string) *Node {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// All returns the child elements called name, in document order.
func (n *Node) All(name string) []*Node {
	var out []*Node
	for _, c := range n.Children {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// Find returns every element called name below n, depth first.
func (n *Node) Find(name string) []*Node {
	var out []*Node
	var walk func(*Node)
	walk = func(x *Node) {
		for _, c := range x.Children {
			if c.Name == name {
				out = append(out, c)
			}
			walk(c)
		}
	}
	walk(n)
	return out
}

// Parse builds the element tree of a preprocessed document. A malformed
// document is an error naming the original file and line.
func Parse(doc *Doc) (*Node, error) {
	var b strings.Builder
	for _, l := range doc.Lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	at := func(line int) (string, int) {
		if line >= 1 && line <= len(doc.Lines) {
			return doc.Lines[line-1].File, doc.Lines[line-1].No
		}
		if len(doc.Lines) > 0 {
			l := doc.Lines[len(doc.Lines)-1]
			return l.File, l.No
		}
		return "", 0
	}
	d := xml.NewDecoder(strings.NewReader(b.String()))
	// FreeSWITCH's parser (ezxml) rejects unmatched and unclosed tags too.
	d.Strict = true
	root := &Node{Name: "#root"}
	cur := root
	count, depth := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, _ := d.InputPos()
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				line = se.Line
				err = errors.New(se.Msg)
			}
			f, no := at(line)
			if cur != root {
				err = fmt.Errorf("%w (the open element is <%s> from %s:%d)", err, cur.Name, cur.File, cur.Line)
			}
			return nil, fmt.Errorf("%s:%d: malformed XML after preprocessing: %w", f, no, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if count++; count > maxNodes {
				line, _ := d.InputPos()
				f, no := at(line)
				return nil, fmt.Errorf("%s:%d: more than %d XML elements", f, no, maxNodes)
			}
			line, _ := d.InputPos()
			f, no := at(line)
			if depth++; depth > maxNesting {
				return nil, fmt.Errorf("%s:%d: XML elements nested deeper than %d", f, no, maxNesting)
			}
			n := &Node{Name: t.Name.Local, Attrs: t.Copy().Attr, Parent: cur, File: f, Line: no}
			cur.Children = append(cur.Children, n)
			cur = n
		case xml.EndElement:
			if cur.Parent != nil {
				cur = cur.Parent
				depth--
			}
		}
	}
	if cur != root {
		f, no := at(len(doc.Lines))
		return nil, fmt.Errorf("%s:%d: malformed XML after preprocessing: <%s> opened at %s:%d is never closed", f, no, cur.Name, cur.File, cur.Line)
	}
	return root, nil
}
