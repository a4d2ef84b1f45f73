package config

import (
	"reflect"
	"testing"
)

// The shipped example documents every key with its default: loading it must
// give exactly Default().
func TestExampleIsDefault(t *testing.T) {
	got, err := Load("../../examples/tollguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("examples/tollguard.yaml differs from Default():\n got %+v\nwant %+v", got, want)
	}
}
