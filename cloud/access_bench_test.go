package cloud_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"varco.dev/cloud"
)

// BenchmarkComputeAccessRecord computes the access records of 100,000
// members in turn (each with two credentials, two memberships, a birthday
// spread over the year and, one in ten, an open blocking action) and
// reports the per-record p50 and p99.
func BenchmarkComputeAccessRecord(b *testing.B) {
	const members = 100_000
	base := baseInput()
	inputs := make([]cloud.AccessInput, members)
	for i := range inputs {
		in := base
		in.Member = &cloud.Member{ID: int64(i + 1), Kind: cloud.KindPerson, FirstName: "Anna", Language: []string{"it", "en"}[i%2],
			BirthDate: cloud.NewDate(1980, 1, 1).AddDays(i % 9000), MedicalCertExpiry: cloud.NewDate(2025, 3, 1).AddDays(i % 60)}
		in.Credentials = []*cloud.Credential{
			{MemberID: in.Member.ID, Key: fmt.Sprintf("card:1:%d", i)},
			{MemberID: in.Member.ID, Key: fmt.Sprintf("pin:%06d", i)},
		}
		in.Memberships = []*cloud.Membership{
			{MemberID: in.Member.ID, StartsOn: cloud.NewDate(2024, 3, 1), EndsOn: cloud.NewDate(2025, 2, 28)},
			{MemberID: in.Member.ID, StartsOn: cloud.NewDate(2025, 3, 1), EndsOn: cloud.NewDate(2025, 3, 1).AddDays(i % 365)},
		}
		if i%10 == 0 {
			in.Actions = []*cloud.Action{{ID: int64(i + 1), MemberID: in.Member.ID, TypeID: 1, Open: true}}
		}
		inputs[i] = in
	}
	durs := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		t := time.Now()
		if _, err := cloud.ComputeAccessRecord(inputs[i%members]); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(t))
		i++
	}
	slices.Sort(durs)
	at := func(p float64) float64 {
		return float64(durs[min(len(durs)-1, int(float64(len(durs))*p))].Nanoseconds())
	}
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}
