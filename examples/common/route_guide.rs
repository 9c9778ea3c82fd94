//! RouteGuide: gRPC's standard route guide, all four kinds of RPC.
//!
//! Server logic follows `route_guide_server.py`; the client follows the standard clients
//! (two `GetFeature`s, `ListFeatures` over the usual rectangle, a 10-point `RecordRoute`, and
//! the four-note `RouteChat` of the C++ example).

use std::time::Instant;

use grpc_sync::{Channel, ResponseStream, ServerContext, Status, Streaming};
use serde_json::Value;

use super::pb::route_guide::route_guide_client::RouteGuideClient;
use super::pb::route_guide::route_guide_server;
use super::pb::route_guide::{Feature, Point, Rectangle, RouteNote, RouteSummary};
use super::{BoxError, Rng};

/// The feature database shipped with the examples (gRPC's `route_guide_db.json`).
const DB_JSON: &str = include_str!("../data/route_guide_db.json");

/// Loads the bundled feature database.
///
/// It is embedded at compile time so the binaries work from any directory.
pub fn load_db() -> Result<Vec<Feature>, String> {
    parse_db(DB_JSON)
}

/// Parses a database in `route_guide_db.json`'s shape:
/// `[{"location": {"latitude": N, "longitude": N}, "name": "…"}, …]`.
pub fn parse_db(text: &str) -> Result<Vec<Feature>, String> {
    let db: Value = serde_json::from_str(text).map_err(|e| format!("route guide db: {e}"))?;
    let Value::Array(items) = db else {
        return Err("route guide db: expected a JSON array".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let coordinate = |key: &str| {
                item["location"][key]
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| format!("route guide db: entry {i}: bad location.{key}"))
            };
            Ok(Feature {
                name: item["name"]
                    .as_str()
                    .ok_or_else(|| format!("route guide db: entry {i}: bad name"))?
                    .to_string(),
                location: Some(Point {
                    latitude: coordinate("latitude")?,
                    longitude: coordinate("longitude")?,
                }),
            })
        })
        .collect()
}

/// The feature at exactly `point`, if the database has one.
fn feature_at<'a>(db: &'a [Feature], point: &Point) -> Option<&'a Feature> {
    db.iter().find(|f| f.location.as_ref() == Some(point))
}

/// Great-circle distance in metres between two points (the tutorial's haversine formula;
/// coordinates are degrees × 10^7).
pub fn distance(start: &Point, end: &Point) -> f64 {
    const COORD_FACTOR: f64 = 10_000_000.0;
    const R: f64 = 6_371_000.0; // metres
    let lat_1 = f64::from(start.latitude) / COORD_FACTOR;
    let lat_2 = f64::from(end.latitude) / COORD_FACTOR;
    let lon_1 = f64::from(start.longitude) / COORD_FACTOR;
    let lon_2 = f64::from(end.longitude) / COORD_FACTOR;
    let delta_lat = (lat_2 - lat_1).to_radians();
    let delta_lon = (lon_2 - lon_1).to_radians();
    let a = (delta_lat / 2.0).sin().powi(2)
        + lat_1.to_radians().cos() * lat_2.to_radians().cos() * (delta_lon / 2.0).sin().powi(2);
    let c = 2.0 * a.sqrt().atan2((1.0 - a).sqrt());
    R * c
}

/// Whether `point` lies inside `rect` (corners in either order, edges included).
pub fn in_rectangle(rect: &Rectangle, point: &Point) -> bool {
    let (lo, hi) = (rect.lo.unwrap_or_default(), rect.hi.unwrap_or_default());
    let (left, right) = (
        lo.longitude.min(hi.longitude),
        lo.longitude.max(hi.longitude),
    );
    let (bottom, top) = (lo.latitude.min(hi.latitude), lo.latitude.max(hi.latitude));
    (left..=right).contains(&point.longitude) && (bottom..=top).contains(&point.latitude)
}

/// Formats a point like the tutorials print one.
pub fn fmt_point(point: Option<&Point>) -> String {
    match point {
        Some(p) => format!("latitude: {}, longitude: {}", p.latitude, p.longitude),
        None => "<no location>".into(),
    }
}

/// The service, holding the feature database.
#[derive(Debug, Clone)]
pub struct RouteGuideService {
    db: Vec<Feature>,
}

impl RouteGuideService {
    /// A service over `db`.
    pub fn new(db: Vec<Feature>) -> RouteGuideService {
        RouteGuideService { db }
    }
}

impl route_guide_server::RouteGuide for RouteGuideService {
    fn get_feature(&self, request: Point, _ctx: &ServerContext) -> Result<Feature, Status> {
        // Points are in 1e-7 degrees: off the globe is the caller's mistake.
        if request.latitude.abs() > 900_000_000 || request.longitude.abs() > 1_800_000_000 {
            return Err(Status::invalid_argument(format!(
                "point ({}, {}) is off the globe: latitude and longitude are in 1e-7 degrees, \
                 within ±90 and ±180 degrees",
                request.latitude, request.longitude
            )));
        }
        // A miss is not an error: the answer is an unnamed feature at the requested point.
        Ok(feature_at(&self.db, &request)
            .cloned()
            .unwrap_or_else(|| Feature {
                name: String::new(),
                location: Some(request),
            }))
    }

    fn list_features<'a>(
        &'a self,
        request: Rectangle,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, Feature>, Status> {
        // Lazily filtered: each feature is found only when the runtime is ready to send it.
        Ok(Box::new(
            self.db
                .iter()
                .filter(move |f| f.location.is_some_and(|p| in_rectangle(&request, &p)))
                .cloned()
                .map(Ok),
        ))
    }

    fn record_route(
        &self,
        requests: Streaming<Point>,
        _ctx: &ServerContext,
    ) -> Result<RouteSummary, Status> {
        let start = Instant::now();
        let (mut point_count, mut feature_count, mut meters) = (0, 0, 0.0);
        let mut prev: Option<Point> = None;
        for point in requests {
            let point = point?;
            point_count += 1;
            if feature_at(&self.db, &point).is_some() {
                feature_count += 1;
            }
            if let Some(prev) = prev {
                meters += distance(&prev, &point);
            }
            prev = Some(point);
        }
        Ok(RouteSummary {
            point_count,
            feature_count,
            distance: meters as i32,
            elapsed_time: start.elapsed().as_secs() as i32,
        })
    }

    fn route_chat<'a>(
        &'a self,
        requests: Streaming<RouteNote>,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, RouteNote>, Status> {
        // For each incoming note, send back every earlier note made at the same place.
        let mut prev_notes: Vec<RouteNote> = Vec::new();
        Ok(Box::new(requests.flat_map(move |note| match note {
            Err(status) => vec![Err(status)],
            Ok(note) => {
                let echoes = prev_notes
                    .iter()
                    .filter(|prev| prev.location == note.location)
                    .cloned()
                    .map(Ok)
                    .collect();
                prev_notes.push(note);
                echoes
            }
        })))
    }
}

/// The standard rectangle: lo (40°, -75°), hi (42°, -73°).
pub fn standard_rectangle() -> Rectangle {
    Rectangle {
        lo: Some(Point {
            latitude: 400_000_000,
            longitude: -750_000_000,
        }),
        hi: Some(Point {
            latitude: 420_000_000,
            longitude: -730_000_000,
        }),
    }
}

/// The four notes of the standard `RouteChat`: the fourth is at the first one's place.
pub fn chat_notes() -> Vec<RouteNote> {
    [
        ("First message", 0, 0),
        ("Second message", 0, 1),
        ("Third message", 1, 0),
        ("Fourth message", 0, 0),
    ]
    .into_iter()
    .map(|(message, latitude, longitude)| RouteNote {
        location: Some(Point {
            latitude,
            longitude,
        }),
        message: message.into(),
    })
    .collect()
}

/// `count` points picked at random from `db`, deterministically from `seed`.
pub fn random_route(db: &[Feature], count: usize, seed: u64) -> Vec<Point> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| db[rng.index(db.len())].location.unwrap_or_default())
        .collect()
}

/// Everything the client saw, for `demo` to check.
#[derive(Debug, Clone)]
pub struct ClientReport {
    /// The two `GetFeature` answers: a known point, then (0, 0) which has no feature.
    pub got: Vec<Feature>,
    /// `ListFeatures` over [`standard_rectangle`].
    pub listed: Vec<Feature>,
    /// The points sent to `RecordRoute`, and its summary.
    pub route: Vec<Point>,
    pub summary: RouteSummary,
    /// The notes `RouteChat` sent back.
    pub chat: Vec<RouteNote>,
}

fn print_feature(feature: &Feature) {
    match (&feature.location, feature.name.is_empty()) {
        (None, _) => println!("Server returned incomplete feature"),
        (Some(p), false) => println!("Feature called {} at {}", feature.name, fmt_point(Some(p))),
        (Some(p), true) => println!("Found no feature at {}", fmt_point(Some(p))),
    }
}

/// The standard route guide client. `seed` fixes the random route.
pub fn run_client(channel: &Channel, db: &[Feature], seed: u64) -> Result<ClientReport, BoxError> {
    let client = RouteGuideClient::new(channel.clone());

    println!("-------------- GetFeature --------------");
    let mut got = Vec::new();
    for point in [
        Point {
            latitude: 409_146_138,
            longitude: -746_188_906,
        },
        Point {
            latitude: 0,
            longitude: 0,
        },
    ] {
        let feature = client.get_feature(point)?;
        print_feature(&feature);
        got.push(feature);
    }

    println!("-------------- ListFeatures --------------");
    println!("Looking for features between 40, -75 and 42, -73");
    let mut listed = Vec::new();
    for feature in client.list_features(standard_rectangle())? {
        let feature = feature?;
        println!(
            "Feature called {} at {}",
            feature.name,
            fmt_point(feature.location.as_ref())
        );
        listed.push(feature);
    }

    println!("-------------- RecordRoute --------------");
    let route = random_route(db, 10, seed);
    // The request iterator is drained on the runtime's sender thread, so the "Visiting" lines
    // appear as each point goes out.
    let summary = client.record_route(route.clone().into_iter().inspect(|p| {
        println!("Visiting point {}", fmt_point(Some(p)));
    }))?;
    println!("Finished trip with {} points", summary.point_count);
    println!("Passed {} features", summary.feature_count);
    println!("Travelled {} meters", summary.distance);
    println!("It took {} seconds", summary.elapsed_time);

    println!("-------------- RouteChat --------------");
    let notes = chat_notes().into_iter().inspect(|note| {
        println!(
            "Sending {} at {}",
            note.message,
            fmt_point(note.location.as_ref())
        );
    });
    let mut chat = Vec::new();
    for note in client.route_chat(notes)? {
        let note = note?;
        println!(
            "Received message {} at {}",
            note.message,
            fmt_point(note.location.as_ref())
        );
        chat.push(note);
    }

    Ok(ClientReport {
        got,
        listed,
        route,
        summary,
        chat,
    })
}
