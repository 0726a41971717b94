package jobs

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zkml/zkml/internal/store"
)

// Metrics are the job metrics; a nil *Metrics records nothing.
type Metrics struct {
	duration *prometheus.HistogramVec
	prove    *prometheus.HistogramVec
	webhooks *prometheus.CounterVec
}

// NewMetrics registers job metrics on reg, including a zkml_jobs gauge per status
// (queue depth is zkml_jobs{status="queued"}) read from st at scrape time.
func NewMetrics(reg prometheus.Registerer, st store.Store) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zkml_job_duration_seconds", Help: "Run time of finished jobs by kind and final status.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}, []string{"kind", "status"}),
		prove: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zkml_prove_seconds", Help: "Prover time per proof by proving system, as reported by the engine.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}, []string{"system"}), // not by model: tenants create models without bound
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zkml_webhook_deliveries_total", Help: "Webhook delivery attempts by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.duration, m.prove, m.webhooks, &depthCollector{st: st,
		desc: prometheus.NewDesc("zkml_jobs", "Jobs by status (queued is the queue depth).", []string{"status"}, nil)})
	return m
}

func (m *Metrics) jobDone(kind store.JobKind, status store.JobStatus, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(string(kind), string(status)).Observe(d.Seconds())
	}
}

func (m *Metrics) proved(system string, seconds float64) {
	if m != nil {
		m.prove.WithLabelValues(system).Observe(seconds)
	}
}

func (m *Metrics) webhook(result string) {
	if m != nil {
		m.webhooks.WithLabelValues(result).Inc()
	}
}

type depthCollector struct {
	st   store.Store
	desc *prometheus.Desc
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.st.CountJobs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range []store.JobStatus{store.JobQueued, store.JobRunning, store.JobSucceeded, store.JobFailed, store.JobCancelled} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
