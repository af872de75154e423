//! The desktop's side of the app's native parts, played by the test on the private session
//! bus that `scripts/e2e.sh` starts with `dbus-run-session`:
//!
//! - [`NotificationServer`]: a small `org.freedesktop.Notifications`, keeping every
//!   notification it is sent (what tauri-plugin-notification's notify-rust calls on Linux);
//! - [`TrayHost`]: a small `org.kde.StatusNotifierWatcher`, where the app's tray icon
//!   (libayatana-appindicator) registers itself; [`TrayHost::menu`] reads the icon's menu over
//!   `com.canonical.dbusmenu` and [`TrayHost::click`] activates an item, as a panel does when
//!   the user clicks it.
//!
//! Each owns its well-known name for as long as it lives; start it before the app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::message::Header;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// One notification as the desktop received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub app_name: String,
    pub summary: String,
    pub body: String,
}

struct Notifications {
    seen: Arc<Mutex<Vec<Notification>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Notification {
            app_name,
            summary,
            body,
        });
        seen.len() as u32
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "e2e".into(),
            "interview-recorder tests".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    fn close_notification(&self, _id: u32) {}
}

/// `org.freedesktop.Notifications` on the session bus, for as long as it lives.
pub struct NotificationServer {
    seen: Arc<Mutex<Vec<Notification>>>,
    _connection: zbus::Connection,
}

impl NotificationServer {
    pub async fn start() -> anyhow::Result<NotificationServer> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connection = zbus::connection::Builder::session()?
            .name("org.freedesktop.Notifications")?
            .serve_at(
                "/org/freedesktop/Notifications",
                Notifications { seen: seen.clone() },
            )?
            .build()
            .await?;
        Ok(NotificationServer {
            seen,
            _connection: connection,
        })
    }

    pub fn seen(&self) -> Vec<Notification> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits up to `secs` for a notification that `wanted` accepts.
    pub async fn wait_for(
        &self,
        what: &str,
        secs: u64,
        wanted: impl Fn(&Notification) -> bool,
    ) -> anyhow::Result<Notification> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(found) = self.seen().into_iter().find(|n| wanted(n)) {
                return Ok(found);
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "waited {secs} s for the notification {what}; the desktop got {:#?}",
                    self.seen()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A status-notifier item that registered: its bus name and object path.
#[derive(Debug, Clone)]
struct Item {
    bus: String,
    path: String,
}

struct Watcher {
    items: Arc<Mutex<Vec<Item>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    /// libappindicator passes its object path and is known by the sender; others pass a
    /// bus name and use the default path.
    fn register_status_notifier_item(&self, service: String, #[zbus(header)] header: Header<'_>) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let item = if service.starts_with('/') {
            Item {
                bus: sender,
                path: service,
            }
        } else {
            Item {
                bus: service,
                path: "/StatusNotifierItem".into(),
            }
        };
        self.items.lock().unwrap().push(item);
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|i| format!("{}{}", i.bus, i.path))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// A dbusmenu layout node, `(ia{sv}av)`: id, properties, children (each a node in a variant).
type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

/// One item of the tray icon's menu, as the panel would show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    pub id: i32,
    /// The label without its mnemonic underscores.
    pub label: String,
    pub enabled: bool,
}

/// `org.kde.StatusNotifierWatcher` on the session bus (the panel's side of the tray), for as
/// long as it lives.
pub struct TrayHost {
    items: Arc<Mutex<Vec<Item>>>,
    connection: zbus::Connection,
}

impl TrayHost {
    pub async fn start() -> anyhow::Result<TrayHost> {
        let items = Arc::new(Mutex::new(Vec::new()));
        let connection = zbus::connection::Builder::session()?
            .name("org.kde.StatusNotifierWatcher")?
            .serve_at(
                "/StatusNotifierWatcher",
                Watcher {
                    items: items.clone(),
                },
            )?
            .build()
            .await?;
        Ok(TrayHost { items, connection })
    }

    /// The menu of the first icon that registered, waiting up to `secs` for one to register.
    pub async fn menu(&self, secs: u64) -> anyhow::Result<Vec<MenuItem>> {
        let (bus, menu_path) = self.menu_object(secs).await?;
        let proxy = zbus::Proxy::new(
            &self.connection,
            bus.as_str(),
            menu_path.as_str(),
            "com.canonical.dbusmenu",
        )
        .await?;
        let (_revision, (_root, _props, children)): (u32, Layout) = proxy
            .call("GetLayout", &(0i32, 1i32, Vec::<String>::new()))
            .await?;
        let mut items = Vec::new();
        for child in &children {
            if let Some(item) = menu_item(child) {
                items.push(item);
            }
        }
        Ok(items)
    }

    /// Activates the item labelled `label`, as a click in the panel's menu does.
    pub async fn click(&self, label: &str) -> anyhow::Result<()> {
        let items = self.menu(5).await?;
        let item = items
            .iter()
            .find(|i| i.label == label)
            .ok_or_else(|| anyhow::anyhow!("the tray menu has no {label:?}: {items:?}"))?;
        let (bus, menu_path) = self.menu_object(5).await?;
        let proxy = zbus::Proxy::new(
            &self.connection,
            bus.as_str(),
            menu_path.as_str(),
            "com.canonical.dbusmenu",
        )
        .await?;
        let timestamp = 0u32;
        let () = proxy
            .call("Event", &(item.id, "clicked", Value::from(0i32), timestamp))
            .await?;
        Ok(())
    }

    /// Polls the menu until `ready` holds; fails with the last menu seen after `secs`.
    pub async fn wait_for_menu(
        &self,
        what: &str,
        secs: u64,
        ready: impl Fn(&[MenuItem]) -> bool,
    ) -> anyhow::Result<Vec<MenuItem>> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let menu = self.menu(secs).await?;
            if ready(&menu) {
                return Ok(menu);
            }
            if Instant::now() > deadline {
                anyhow::bail!("waited {secs} s for {what}; the tray menu is {menu:#?}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The registered icon's bus name and the path of its menu (its `Menu` property).
    async fn menu_object(&self, secs: u64) -> anyhow::Result<(String, OwnedObjectPath)> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let item = loop {
            if let Some(item) = self.items.lock().unwrap().first().cloned() {
                break item;
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "no tray icon registered with the StatusNotifierWatcher within {secs} s \
                     (is libayatana-appindicator3-1 installed?)"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let properties = zbus::fdo::PropertiesProxy::builder(&self.connection)
            .destination(item.bus.as_str())?
            .path(item.path.as_str())?
            .build()
            .await?;
        let menu = properties
            .get("org.kde.StatusNotifierItem".try_into()?, "Menu")
            .await?;
        let menu = OwnedObjectPath::try_from(menu)?;
        Ok((item.bus, menu))
    }
}

/// A dbusmenu layout node `(ia{sv}av)`: its id, label and whether it is enabled; `None` for
/// separators and hidden items.
fn menu_item(node: &Value<'_>) -> Option<MenuItem> {
    let structure = match node {
        Value::Value(inner) => return menu_item(inner),
        Value::Structure(structure) => structure,
        _ => return None,
    };
    let fields = structure.fields();
    let Some(Value::I32(id)) = fields.first() else {
        return None;
    };
    let Some(Value::Dict(props)) = fields.get(1) else {
        return None;
    };
    let mut label = None;
    let mut enabled = true;
    let mut shown = true;
    for (key, value) in props.iter() {
        let value = match value {
            Value::Value(inner) => inner.as_ref(),
            other => other,
        };
        match (key, value) {
            (Value::Str(k), Value::Str(v)) if k.as_str() == "label" => {
                label = Some(v.as_str().replace('_', ""));
            }
            (Value::Str(k), Value::Str(v)) if k.as_str() == "type" && v.as_str() == "separator" => {
                return None;
            }
            (Value::Str(k), Value::Bool(b)) if k.as_str() == "enabled" => enabled = *b,
            (Value::Str(k), Value::Bool(b)) if k.as_str() == "visible" => shown = *b,
            _ => {}
        }
    }
    shown.then(|| MenuItem {
        id: *id,
        label: label.unwrap_or_default(),
        enabled,
    })
}
