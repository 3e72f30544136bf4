//! Users and roles: `CREATE USER`, `DROP USER`, `GRANT`, `REVOKE`, `SHOW GRANTS`.

use sqlparser::tokenizer::Token;

use super::keywords::is_reserved;
use super::{ParseError, Parser};
use crate::ast::{Statement, UserIdentity};

impl Parser<'_> {
    /// `[IF NOT EXISTS] user [IDENTIFIED BY 'pw']`, after `CREATE USER`.
    pub(super) fn parse_create_user(&mut self) -> Result<Statement, ParseError> {
        let if_not_exists = self.parse_if_not_exists();
        let user = self.parse_user_identity()?;
        let password = if self.parse_keyword("IDENTIFIED") {
            self.expect_keyword("BY")?;
            Some(self.parse_string()?)
        } else {
            None
        };
        Ok(Statement::CreateUser {
            user,
            if_not_exists,
            password,
        })
    }

    /// `[IF EXISTS] user`, after `DROP USER`.
    pub(super) fn parse_drop_user(&mut self) -> Result<Statement, ParseError> {
        let if_exists = self.parse_if_exists();
        let user = self.parse_user_identity()?;
        Ok(Statement::DropUser { user, if_exists })
    }

    /// `role [, ...] TO [USER] user`, after `GRANT`.
    pub(super) fn parse_grant(&mut self) -> Result<Statement, ParseError> {
        let roles = self.parse_roles()?;
        self.expect_keyword("TO")?;
        let user = self.parse_grantee()?;
        Ok(Statement::GrantRole { roles, user })
    }

    /// `role [, ...] FROM [USER] user`, after `REVOKE`.
    pub(super) fn parse_revoke(&mut self) -> Result<Statement, ParseError> {
        let roles = self.parse_roles()?;
        self.expect_keyword("FROM")?;
        let user = self.parse_grantee()?;
        Ok(Statement::RevokeRole { roles, user })
    }

    /// `[FOR user]`, after `SHOW GRANTS`.
    pub(super) fn parse_show_grants(&mut self) -> Result<Statement, ParseError> {
        let user = if self.parse_keyword("FOR") {
            Some(self.parse_user_identity()?)
        } else {
            None
        };
        Ok(Statement::ShowGrants { user })
    }

    /// The role list of GRANT / REVOKE. Privilege grants (`GRANT SELECT ON ...`) are not
    /// supported and get a message saying so.
    fn parse_roles(&mut self) -> Result<Vec<String>, ParseError> {
        let first = self.peek().clone();
        let roles = self.parse_comma_separated(Self::parse_ident);
        // `GRANT SELECT ...`, `GRANT ALL ...`: privileges are reserved words.
        let privilege_like = matches!(&first.token,
            Token::Word(word) if word.quote_style.is_none() && is_reserved(&word.value));
        if (roles.is_err() && privilege_like) || self.peek_keyword("ON") {
            return Err(self.error_at(
                &first,
                "only roles can be granted or revoked (GRANT ADMIN TO user); privilege grants are not supported",
            ));
        }
        roles
    }

    /// `[USER] user` after TO / FROM. Granting to a role is not supported.
    fn parse_grantee(&mut self) -> Result<UserIdentity, ParseError> {
        let is_user_name = |token: &Token| {
            matches!(
                token,
                Token::Word(_) | Token::SingleQuotedString(_) | Token::DoubleQuotedString(_)
            )
        };
        if self.peek_keyword("ROLE") && is_user_name(&self.peek_nth(1).token) {
            return Err(self.error_at(self.peek(), "granting roles to roles is not supported"));
        }
        if self.peek_keyword("USER") && is_user_name(&self.peek_nth(1).token) {
            self.next();
        }
        self.parse_user_identity()
    }

    /// `'name'[@'host']`, also unquoted or backquoted, as MySQL writes users. The host is
    /// kept but means nothing to shale.
    fn parse_user_identity(&mut self) -> Result<UserIdentity, ParseError> {
        let name_token = self.peek().clone();
        // The tokenizer reads `u@host` and `u@` as one word.
        let (name, mut host, host_follows) = match &name_token.token {
            Token::Word(word) if word.quote_style.is_none() && word.value.contains('@') => {
                let (name, host) = word.value.split_once('@').unwrap_or((&word.value, ""));
                let (name, host) = (name.to_string(), host.to_string());
                self.next();
                let host_follows = host.is_empty();
                (name, (!host.is_empty()).then_some(host), host_follows)
            }
            _ => match self.parse_optional_string() {
                Some(name) => (name, None, false),
                None => (self.parse_ident()?, None, false),
            },
        };
        if name.is_empty() {
            return Err(self.error_at(&name_token, "user name must not be empty"));
        }
        if host_follows || self.consume_token(&Token::AtSign) {
            host = Some(self.parse_host()?);
        } else if host.is_none() {
            // `'u'@localhost` reads as a string then the word `@localhost`.
            let at_word = match &self.peek().token {
                Token::Word(word) if word.quote_style.is_none() => {
                    word.value.strip_prefix('@').map(str::to_string)
                }
                _ => None,
            };
            if let Some(rest) = at_word {
                self.next();
                host = Some(if rest.is_empty() {
                    self.parse_host()?
                } else {
                    rest
                });
            }
        }
        Ok(UserIdentity { name, host })
    }

    /// The host part of a user: a string or a word.
    fn parse_host(&mut self) -> Result<String, ParseError> {
        if let Some(host) = self.parse_optional_string() {
            return Ok(host);
        }
        match &self.peek().token {
            Token::Word(word) => {
                let host = word.value.clone();
                self.next();
                Ok(host)
            }
            _ => self.expected("host name"),
        }
    }
}
