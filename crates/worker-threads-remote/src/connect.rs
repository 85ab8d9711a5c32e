//! The servers a pool or a worker connects to: one URL, or a cluster's, separated by
//! commas.

use async_nats::ServerAddr;

use crate::error::ConnectError;

/// The server addresses in `urls` (`nats://a:4222` or `nats://a:4222,nats://b:4222`).
/// The client tries them in turn, and learns the rest of a cluster from the one it
/// reaches.
pub(crate) fn servers(urls: &str) -> Result<Vec<ServerAddr>, ConnectError> {
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<ServerAddr>()
                .map_err(|error| ConnectError::Url(format!("{url}: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(ConnectError::Url(format!("no server in {urls:?}")));
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_or_several_separated_by_commas() {
        let one = servers("nats://127.0.0.1:4222").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].port(), 4222);
        let three = servers("nats://127.0.0.1:1, nats://127.0.0.1:2,nats://127.0.0.1:3").unwrap();
        let ports: Vec<u16> = three.iter().map(ServerAddr::port).collect();
        assert_eq!(ports, vec![1, 2, 3]);
        assert!(matches!(servers(""), Err(ConnectError::Url(_))));
        assert!(matches!(servers("nats://[bad"), Err(ConnectError::Url(_))));
    }
}
