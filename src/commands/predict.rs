//! `nasperf predict`: a client for people.

use anyhow::Context;

use crate::{
    cli::PredictArgs,
    proto::v1::{Candidate, PredictRequest, predictor_client::PredictorClient},
};

pub async fn run(args: PredictArgs) -> anyhow::Result<()> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(args.server.clone())
        .with_context(|| format!("--server {}: not a URL", args.server))?;
    if args.server.starts_with("https://") {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let read = |path: &std::path::Path| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &args.tls_ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&args.tls_client_cert, &args.tls_client_key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    let mut client = PredictorClient::new(channel);
    let proxies: std::collections::HashMap<String, f64> = args.proxies.into_iter().collect();
    let request = PredictRequest {
        candidates: args
            .archs
            .iter()
            .map(|arch| Candidate {
                search_space: args.search_space.clone(),
                arch: arch.clone(),
                proxies: proxies.clone(),
            })
            .collect(),
        dataset: args.dataset,
        objectives: args.objectives,
        request_id: String::new(),
        study: args.study,
        intervals: true,
    };
    let mut request = tonic::Request::new(request);
    if let Some(token) = &args.token {
        let value = format!("Bearer {token}")
            .parse()
            .context("--token: not valid in a gRPC header")?;
        request.metadata_mut().insert("authorization", value);
    }
    let response = client
        .predict(request)
        .await
        .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    print!("{}", render_table(&args.archs, &response));
    if response
        .predictions
        .iter()
        .any(|p| p.measured.contains(&true))
    {
        println!("* measured in the study, not predicted");
    }
    if let Some(coverage) = response
        .objectives
        .iter()
        .map(|o| o.interval_coverage)
        .find(|&c| c > 0.0)
    {
        println!(
            "± half-width of the model's {:.0}% interval",
            coverage * 100.0
        );
    }
    if response.measurements_unavailable {
        println!("(the evaluation store was unreachable: every value is a prediction)");
    }
    Ok(())
}

/// One row per objective, one column per candidate.
fn render_table(archs: &[String], response: &crate::proto::v1::PredictResponse) -> String {
    let mut out = String::new();
    for (i, (arch, p)) in archs.iter().zip(&response.predictions).enumerate() {
        out.push_str(&format!(
            "candidate {i}: {arch}\n  canonical key {}\n",
            p.canonical_key
        ));
    }
    let width = response
        .objectives
        .iter()
        .map(|o| o.objective.len())
        .max()
        .unwrap_or(9)
        .max(9);
    out.push_str(&format!("{:<width$}", "objective"));
    for i in 0..response.predictions.len() {
        out.push_str(&format!(" {:>20}", format!("candidate {i}")));
    }
    out.push_str("  model version\n");
    for (j, o) in response.objectives.iter().enumerate() {
        out.push_str(&format!("{:<width$}", o.objective));
        for p in &response.predictions {
            let v = p.values.get(j).copied().unwrap_or(f64::NAN);
            let measured = p.measured.get(j).copied().unwrap_or(false);
            let width = p.interval_half_widths.get(j).copied().unwrap_or(0.0);
            let cell = if measured {
                format!("{v:.4}*")
            } else if width > 0.0 {
                format!("{v:.4} ± {width:.3} ")
            } else {
                format!("{v:.4} ")
            };
            out.push_str(&format!(" {cell:>20}"));
        }
        out.push_str(&format!("  {}\n", o.model_version));
    }
    out
}
