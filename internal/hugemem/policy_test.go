package hugemem

import "testing"

func TestPagePolicyRoundTrip(t *testing.T) {
	for _, p := range []PagePolicy{PagesAuto, PagesHuge, PagesSmall} {
		got, err := ParsePagePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePagePolicy(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
		b, err := p.MarshalText()
		if err != nil {
			t.Fatalf("%v.MarshalText: %v", p, err)
		}
		var q PagePolicy
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, q, err, p)
		}
	}
	if PagePolicy(0) != PagesAuto {
		t.Error("zero PagePolicy is not PagesAuto")
	}
}

func TestPagePolicyBad(t *testing.T) {
	for _, s := range []string{"", "Auto", "2M", "hugepages"} {
		if _, err := ParsePagePolicy(s); err == nil {
			t.Errorf("ParsePagePolicy(%q): no error", s)
		}
	}
	if s := PagePolicy(7).String(); s != "PagePolicy(7)" {
		t.Errorf("PagePolicy(7).String() = %q", s)
	}
	if _, err := PagePolicy(7).MarshalText(); err == nil {
		t.Error("PagePolicy(7).MarshalText: no error")
	}
	p := PagesSmall
	if err := p.UnmarshalText([]byte("bogus")); err == nil || p != PagesSmall {
		t.Errorf("UnmarshalText(bogus) = %v, left %v", err, p)
	}
}
