//! Bearer-token authentication as a server interceptor (`auth_server`, and the grpcio interop
//! test `tests/interceptors_grpcio.rs`): every call must carry `authorization: Bearer <token>`,
//! which is what grpcio's `access_token_call_credentials` sends; the interceptor tells the
//! handlers who called through the call's extensions.

use grpc_sync::server::{CallStart, ServerInterceptor};
use grpc_sync::{ServerContext, Status};

use super::pb::helloworld::greeter_server;
use super::pb::helloworld::{HelloReply, HelloRequest};

/// The token `auth_server` accepts unless told otherwise (`--token`).
pub const DEFAULT_TOKEN: &str = "secret-token";

/// The user that token stands for unless told otherwise (`--user`).
pub const DEFAULT_USER: &str = "alice";

/// Who made a call: what [`BearerAuth`] leaves in the call's extensions for the handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub String);

/// Rejects every call without `authorization: Bearer <token>` (UNAUTHENTICATED), and puts
/// the [`User`] the token stands for into the calls it lets through.
///
/// Health checks stay open: probes and load balancers carry no token.
#[derive(Debug, Clone)]
pub struct BearerAuth {
    token: String,
    user: String,
}

impl BearerAuth {
    /// Accepts `token`, as `user`.
    pub fn new(token: &str, user: &str) -> BearerAuth {
        BearerAuth {
            token: token.to_string(),
            user: user.to_string(),
        }
    }
}

impl ServerInterceptor for BearerAuth {
    fn intercept(&self, call: &mut CallStart<'_>) -> Result<(), Status> {
        if call.method().starts_with("/grpc.health.v1.Health/") {
            return Ok(());
        }
        let Some(value) = call.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "no credentials: send metadata `authorization: Bearer <token>`",
            ));
        };
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(Status::unauthenticated(
                    "the authorization metadata must be `Bearer <token>`",
                ))
            }
        };
        if !same_secret(token.as_bytes(), self.token.as_bytes()) {
            return Err(Status::unauthenticated("invalid bearer token"));
        }
        call.extensions_mut().insert(User(self.user.clone()));
        Ok(())
    }
}

/// Compares two secrets in time that depends on their lengths only, so that response times
/// do not tell an attacker how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller's name, as [`BearerAuth`] left it in the context.
///
/// # Errors
/// UNAUTHENTICATED if the server has no [`BearerAuth`] in front of this handler.
pub fn caller(ctx: &ServerContext) -> Result<&str, Status> {
    ctx.extensions()
        .get::<User>()
        .map(|u| u.0.as_str())
        .ok_or_else(|| Status::unauthenticated("no authenticated user"))
}

/// The Greeter behind [`BearerAuth`]: greets the request's name and says who asked.
#[derive(Debug, Default)]
pub struct AuthGreeter;

impl AuthGreeter {
    fn greet(name: &str, ctx: &ServerContext) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("hello {name} (authenticated as {})", caller(ctx)?),
        })
    }
}

impl greeter_server::Greeter for AuthGreeter {
    fn say_hello(&self, request: HelloRequest, ctx: &ServerContext) -> Result<HelloReply, Status> {
        Self::greet(&request.name, ctx)
    }

    fn say_hello_again(
        &self,
        request: HelloRequest,
        ctx: &ServerContext,
    ) -> Result<HelloReply, Status> {
        Self::greet(&request.name, ctx)
    }
}
