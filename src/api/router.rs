//! Maps a method and path to what should answer it. Pure, so it is table-tested.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// CORS preflight for any path.
    Preflight,
    /// `GET /`: health.
    Health,
    /// `/rtc/validate`: the checks a join would make, as a plain GET.
    RtcValidate,
    /// `/rtc`: the v0 signal WebSocket.
    Rtc,
    /// `/rtc/v1`: the signal WebSocket with one peer connection (`join_request`).
    RtcV1,
    /// `/rtc/v1/validate`: the checks a v1 join would make.
    RtcV1Validate,
    /// `POST /twirp/<package.Service>/<Method>`.
    Twirp {
        service: &'a str,
        method: &'a str,
    },
    /// A Twirp path with the wrong HTTP method.
    TwirpBadMethod,
    NotFound,
}

pub fn route<'a>(method: &str, path: &'a str) -> Route<'a> {
    if method == "OPTIONS" {
        return Route::Preflight;
    }
    if let Some(rest) = path.strip_prefix("/twirp/") {
        if method != "POST" {
            return Route::TwirpBadMethod;
        }
        return match rest.split_once('/') {
            Some((service, method)) if !service.is_empty() && !method.is_empty() => {
                Route::Twirp { service, method }
            }
            _ => Route::NotFound,
        };
    }
    let get = method == "GET" || method == "HEAD";
    match path {
        "/" | "" if get => Route::Health,
        "/rtc/validate" | "/rtc/validate/" if get => Route::RtcValidate,
        "/rtc" | "/rtc/" if get => Route::Rtc,
        "/rtc/v1/validate" | "/rtc/v1/validate/" if get => Route::RtcV1Validate,
        "/rtc/v1" | "/rtc/v1/" if get => Route::RtcV1,
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let table: &[(&str, &str, Route)] = &[
            ("GET", "/", Route::Health),
            ("HEAD", "/", Route::Health),
            ("POST", "/", Route::NotFound),
            ("GET", "/rtc", Route::Rtc),
            ("GET", "/rtc/validate", Route::RtcValidate),
            ("GET", "/rtc/v1", Route::RtcV1),
            ("GET", "/rtc/v1/validate", Route::RtcV1Validate),
            ("POST", "/rtc/v1", Route::NotFound),
            ("GET", "/rtc/v2", Route::NotFound),
            ("GET", "/rtcx", Route::NotFound),
            (
                "OPTIONS",
                "/twirp/livekit.RoomService/ListRooms",
                Route::Preflight,
            ),
            (
                "POST",
                "/twirp/livekit.RoomService/ListRooms",
                Route::Twirp {
                    service: "livekit.RoomService",
                    method: "ListRooms",
                },
            ),
            (
                "GET",
                "/twirp/livekit.RoomService/ListRooms",
                Route::TwirpBadMethod,
            ),
            ("POST", "/twirp/livekit.RoomService/", Route::NotFound),
            ("POST", "/twirp/livekit.RoomService", Route::NotFound),
            ("GET", "/metrics", Route::NotFound),
        ];
        for (method, path, want) in table {
            assert_eq!(route(method, path), *want, "{method} {path}");
        }
    }
}
