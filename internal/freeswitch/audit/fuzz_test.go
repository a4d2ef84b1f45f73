package audit

import (
	"testing"
)

// FuzzPreprocess feeds arbitrary bytes to the preprocessor and the XML
// parser as a root file in an empty directory: errors are fine, panics and
// runaway work are not.
func FuzzPreprocess(f *testing.F) {
	f.Add([]byte("<document>\n<X-PRE-PROCESS cmd=\"set\" data=\"a=b\"/>\n<x v=\"$${a}\"/>\n</document>\n"))
	f.Add([]byte("<!-- <X-PRE-PROCESS cmd=\"set\" data=\"default_password=1234\"/> -->\n"))
	f.Add([]byte("<!--#set \"x=1\"-->\n<!--#\n<X-PRE-PROCESS cmd=\"set\" data=\"y=2\"/>\n-->\n"))
	f.Add([]byte("<X-PRE-PROCESS cmd=\"include\" data=\"*.xml\"/>\n<X-PRE-PROCESS cmd=\"include\" data=\"/*/*\"/>\n"))
	f.Add([]byte("<XX-PRE-PROCESS cmd=\"set\" data=\"a=1\"/>\n<include>\n$${\n$${a}$${\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := PreprocessBytes(dir, rootFile, data, nil)
		if err != nil {
			return
		}
		if _, err := Parse(doc); err != nil {
			return
		}
	})
}
