//! The listener, its connections, and the [`Handle`] that stops them.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tender_oci::LayoutStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::error::ServeError;
use crate::handler::{self, State};
use crate::log::Logger;
use crate::tls::{self, TlsFiles};

/// A client must send its request head within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A client must finish the TLS handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to serve.
#[derive(Clone)]
pub struct ServeOptions {
    /// HTTPS with this certificate and key; plain HTTP if `None`.
    pub tls: Option<TlsFiles>,
    /// Where log events go; nowhere if `None`.
    pub logger: Option<Logger>,
    /// On shutdown, how long requests in flight may take to finish before
    /// their connections are closed.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            tls: None,
            logger: None,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A read-only OCI distribution registry over an embedded store.
pub struct Server;

impl Server {
    /// Opens the store (an OCI image layout; nothing is created or written),
    /// reads its `index.json`, binds `addr` (port 0: any free port), and
    /// serves on background threads until the [`Handle`] is shut down or
    /// dropped.
    pub fn bind(
        store: impl AsRef<Path>,
        addr: SocketAddr,
        options: ServeOptions,
    ) -> Result<Handle, ServeError> {
        let logger = options.logger.unwrap_or_else(|| Arc::new(|_| {}));
        let tls = options.tls.as_ref().map(tls::acceptor).transpose()?;
        let store = LayoutStore::open(store.as_ref())?;
        let state = Arc::new(State::load(store, logger)?);
        let bind_error = |source| ServeError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("tender-serve")
            .build()
            .map_err(ServeError::Runtime)?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener).map_err(bind_error)?
        };
        let (stop, stopped) = watch::channel(false);
        let is_tls = tls.is_some();
        let server = runtime.spawn(accept_loop(
            listener,
            state,
            tls,
            stopped,
            options.shutdown_grace,
        ));
        Ok(Handle {
            runtime: Some(runtime),
            server: Some(server),
            stop,
            local_addr,
            tls: is_tls,
        })
    }
}

/// A signal that asks the server to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (what Kubernetes and systemd send).
    Terminate,
}

/// A running server. Dropping it stops the server at once; [`Handle::shutdown`]
/// lets requests in flight finish first.
pub struct Handle {
    runtime: Option<Runtime>,
    server: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    local_addr: SocketAddr,
    tls: bool,
}

impl Handle {
    /// The address the server listens on (with the real port if bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether it speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Blocks until the process gets SIGINT or SIGTERM (Ctrl-C elsewhere).
    /// Must not be called from async code.
    pub fn wait_for_signal(&self) -> io::Result<Signal> {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        runtime.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let mut interrupt = signal(SignalKind::interrupt())?;
                let mut terminate = signal(SignalKind::terminate())?;
                tokio::select! {
                    _ = interrupt.recv() => Ok(Signal::Interrupt),
                    _ = terminate.recv() => Ok(Signal::Terminate),
                }
            }
            #[cfg(not(unix))]
            {
                tokio::signal::ctrl_c().await?;
                Ok(Signal::Interrupt)
            }
        })
    }

    /// Stops accepting connections, lets requests in flight finish (up to
    /// [`ServeOptions::shutdown_grace`]), then closes everything. Blocks;
    /// must not be called from async code.
    pub fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            if let Some(server) = self.server.take() {
                let _ = runtime.block_on(server);
            }
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close.
                state.warn(format!("accepting a connection: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let watcher = graceful.watcher();
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = {
                let state = state.clone();
                service_fn(move |request| handler::serve(state.clone(), request, remote))
            };
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            // A connection error is the client's (reset, timeout, bad
            // HTTP); its requests were already logged.
            match tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(tcp), service);
                    let _ = watcher.watch(connection).await;
                }
                Some(acceptor) => match handshake(&acceptor, tcp).await {
                    Ok(stream) => {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection).await;
                    }
                    Err(e) => state.warn(format!("TLS handshake with {remote}: {e}")),
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        state.warn(format!(
            "connections still open {}s after shutdown began are closed",
            grace.as_secs()
        ));
    }
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("not done after {}s", HANDSHAKE_TIMEOUT.as_secs()),
        )),
    }
}
