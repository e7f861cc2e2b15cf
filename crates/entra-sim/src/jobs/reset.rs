//! The `resetScope` of a `restart`: its flags and how a comma-separated flags string parses.

/// One flag of `restart`'s `resetScope` (documented members of
/// `synchronizationJobRestartScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResetFlag {
    None,
    ConnectorDataStore,
    Escrows,
    Watermark,
    QuarantineState,
    /// Includes `ConnectorDataStore`.
    Full,
    ForceDeletes,
}

const RESET_FLAGS: [ResetFlag; 7] = [
    ResetFlag::None,
    ResetFlag::ConnectorDataStore,
    ResetFlag::Escrows,
    ResetFlag::Watermark,
    ResetFlag::QuarantineState,
    ResetFlag::Full,
    ResetFlag::ForceDeletes,
];

impl ResetFlag {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::ConnectorDataStore => "ConnectorDataStore",
            Self::Escrows => "Escrows",
            Self::Watermark => "Watermark",
            Self::QuarantineState => "QuarantineState",
            Self::Full => "Full",
            Self::ForceDeletes => "ForceDeletes",
        }
    }
}

/// A parsed `resetScope`: the comma-separated flags string Graph uses for flags enums
/// (`"Watermark, Escrows, QuarantineState"`). Names are case-sensitive; spaces around them are
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetScope {
    flags: Vec<ResetFlag>,
}

impl ResetScope {
    /// `Err` names the first part that is not a flag.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut flags = Vec::new();
        for part in text.split(',').map(str::trim) {
            let flag = RESET_FLAGS
                .into_iter()
                .find(|flag| flag.name() == part)
                .ok_or_else(|| part.to_owned())?;
            if !flags.contains(&flag) {
                flags.push(flag);
            }
        }
        Ok(Self { flags })
    }

    /// Whether the string named `flag` itself.
    pub fn names(&self, flag: ResetFlag) -> bool {
        self.flags.contains(&flag)
    }

    /// Whether the restart resets what `flag` resets (`Full` resets everything but
    /// `ForceDeletes`).
    pub fn resets(&self, flag: ResetFlag) -> bool {
        self.names(flag) || (self.names(ResetFlag::Full) && flag != ResetFlag::ForceDeletes)
    }

    pub fn flags(&self) -> &[ResetFlag] {
        &self.flags
    }
}
