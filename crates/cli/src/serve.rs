//! `postdoc serve` and `postdoc run --serve`: the dashboard on a local port.

use anyhow::{Context, Result};
use postdoc_dashboard::{Access, Dashboard};
use postdoc_store::{Store, StudyRecord};
use std::net::{IpAddr, SocketAddr};

/// Where the dashboard listens.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ServeArgs {
    /// The port (0 picks a free one).
    #[arg(long, default_value_t = 8440)]
    pub(crate) port: u16,
    /// The address to listen on. Any address but a loopback one needs --token.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub(crate) bind: IpAddr,
    /// A secret of 16 or more letters, digits, '-' or '_' that every request must carry (as the
    /// link the server prints does).
    #[arg(long, env = "POSTDOC_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// A dashboard serving in the background until dropped.
pub(crate) struct Server {
    pub(crate) url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The listening socket and its access policy, taken before anything else starts, so a port in
/// use or a missing token is said before a study begins.
pub(crate) struct Listener {
    listener: tokio::net::TcpListener,
    access: Access,
}

pub(crate) async fn listen(args: &ServeArgs) -> Result<Listener> {
    let addr = SocketAddr::new(args.bind, args.port);
    let access = Access::for_address(addr, args.token.clone())?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    Ok(Listener { listener, access })
}

impl Listener {
    /// Serves `study` in the background, once it has been read: the address given out answers
    /// at once.
    pub(crate) async fn serve(self, store: Store, study: StudyRecord) -> Result<Server> {
        let Listener { listener, access } = self;
        let dashboard = Dashboard::new(store, study)?;
        dashboard.warm().await?;
        let local = listener.local_addr().context("the dashboard's address")?;
        let host = match local.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let url = match access.token() {
            // The link carries the token once; the page keeps it in a cookie.
            Some(token) => format!("http://{host}:{}/?token={token}", local.port()),
            None => format!("http://{host}:{}/", local.port()),
        };
        let task = tokio::spawn(async move {
            if let Err(e) = postdoc_dashboard::serve(listener, dashboard, access).await {
                eprintln!("error: the dashboard stopped: {e}");
            }
        });
        Ok(Server { url, task })
    }
}
